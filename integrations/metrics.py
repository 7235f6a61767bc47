"""What a Bus counts while it runs: messages sent and published per channel, and per channel
and group the deliveries handled, failed, retried, dead-lettered and dropped as duplicates, with
handler and publish durations.

Kept in this process, cheaply (a lock and an integer per event; a histogram is a bisect and
three additions). ``bus.metrics()`` returns a snapshot; the ops server (``interchange.ops``)
turns the same numbers into Prometheus text at scrape time, so nothing is counted twice.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from interchange.adapters import CommandTransport, EventTransport

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the duration histograms; a last bucket holds the rest."""

COUNTERS = (
    "sent",
    "published",
    "publish_failed",
    "handled",
    "failed",
    "retried",
    "dead_lettered",
    "duplicates",
)
"""sent/published/publish_failed count messages per channel (group ""); the others deliveries
per channel and group. ``failed`` counts handler exceptions: each is then ``retried`` or
``dead_lettered`` (which also counts messages that could not be decoded)."""


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "buckets": dict(zip(BUCKETS, self.counts, strict=False)),
            "sum": self.total,
            "count": self.count,
        }


class InFlight:
    """How many deliveries a Bus's handlers are in the middle of: what a stop waits for. A
    consumer thread that is still ending its loop or closing its connection, with no delivery
    in hand, is not a handler outliving the grace period."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._count -= 1
            if not self._count:
                self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Whether no delivery is in hand within ``timeout`` seconds (0: now)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._count, max(0.0, timeout))

    def counted(self, func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``func`` (a consumer's per-delivery callable), counted while it runs."""

        def call(delivery: Any) -> Any:
            with self:
                return func(delivery)

        return call


class Meter:
    """The counters and histograms of one channel and group, bound once (a dispatcher keeps
    its own): counting is a lock and an addition."""

    def __init__(self, channel: str, group: str, in_flight: InFlight | None = None) -> None:
        self.channel = channel
        self.group = group
        self.in_flight = in_flight or InFlight()
        """Where a delivery is counted while it is handled (the Bus's: what a stop waits for)."""
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.handler_seconds = Histogram()
        self.publish_seconds = Histogram()
        self.lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def handled_in(self, seconds: float, outcome: str) -> None:
        """A handler call that ended with ``outcome`` (handled, retried, dead_lettered)."""
        histogram = self.handler_seconds
        with self.lock:  # Histogram.observe spelt out: this runs for every message handled
            histogram.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            histogram.total += seconds
            histogram.count += 1
            self.counts[outcome] += 1
            if outcome != "handled":
                self.counts["failed"] += 1

    def published_in(self, seconds: float, name: str, n: int) -> None:
        with self.lock:
            self.publish_seconds.observe(seconds)
            self.counts[name] += n


class Metrics:
    """Every Meter of one Bus, by (channel, group)."""

    def __init__(self) -> None:
        self._meters: dict[tuple[str, str], Meter] = {}
        self._lock = threading.Lock()
        self.in_flight = InFlight()

    def meter(self, channel: str, group: str | None = None) -> Meter:
        key = (channel, group or "")
        with self._lock:
            found = self._meters.get(key)
            if found is None:
                found = self._meters[key] = Meter(*key, self.in_flight)
            return found

    def meters(self) -> list[Meter]:
        with self._lock:
            return list(self._meters.values())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{"<channel>|<group>": {"sent": n, ..., "handler_seconds": {...}}}``: only what
        happened (counters at zero and empty histograms are left out)."""
        shown: dict[str, dict[str, Any]] = {}
        for meter in self.meters():
            with meter.lock:
                entry: dict[str, Any] = {k: v for k, v in meter.counts.items() if v}
                for name in ("handler_seconds", "publish_seconds"):
                    histogram: Histogram = getattr(meter, name)
                    if histogram.count:
                        entry[name] = histogram.snapshot()
            if entry:
                shown[f"{meter.channel}|{meter.group}"] = entry
        return shown


class _Metered:
    """A transport whose publishing verbs are counted and timed per channel (sent/published
    when the broker or the spool stored them, publish_failed when the call raised); every
    other attribute is the wrapped transport's own."""

    def __init__(self, inner: Any, metrics: Metrics, stored: str) -> None:
        self._inner, self._metrics, self._stored = inner, metrics, stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _one(self, verb: str, channel: str, message: Any) -> None:
        self._many(verb, channel, message, 1)

    def _many(self, verb: str, channel: str, messages: Any, count: int | None = None) -> None:
        # timed here, not in a generator context manager: one cost ~4 µs of a confirmed send
        meter, started = self._metrics.meter(channel), time.perf_counter()
        count = len(messages) if count is None else count
        try:
            getattr(self._inner, verb)(channel, messages)
        except BaseException:
            meter.published_in(time.perf_counter() - started, "publish_failed", count)
            raise
        meter.published_in(time.perf_counter() - started, self._stored, count)

    def send(self, queue: str, message: Any) -> None:
        self._one("send", queue, message)

    def send_many(self, queue: str, messages: list[Any]) -> None:
        self._many("send_many", queue, messages)

    def broadcast(self, exchange: str, message: Any) -> None:
        self._one("broadcast", exchange, message)

    def publish(self, topic: str, message: Any) -> None:
        self._one("publish", topic, message)

    def publish_many(self, topic: str, messages: list[Any]) -> None:
        self._many("publish_many", topic, messages)


def metered(
    commands: CommandTransport, events: EventTransport, metrics: Metrics
) -> tuple[CommandTransport, EventTransport]:
    """The two transports, counted into ``metrics``."""
    return (
        cast("CommandTransport", _Metered(commands, metrics, "sent")),
        cast("EventTransport", _Metered(events, metrics, "published")),
    )
