"""Failover: a transport wrapping a primary transport and a spool (Redis), itself a transport.

Publishing verbs (send, send_many, broadcast, publish, publish_many) go to the primary while
its circuit is closed. When the primary cannot be reached (BackendUnavailable: no connection,
no confirm in time) the circuit opens and messages are appended to the spool instead, envelope
intact. A primary that can (FailsFast) is told to give up at once when its broker refuses or
has closed connections and within ``within`` seconds (``fallback_timeout``) when it does not
answer, instead of its own, longer timeouts: the caller of a publishing verb waits that long
at most before the spool takes the message. A message the primary *refused* (PublishRejected:
unroutable, too large) is the caller's error, never spooled; nor is one larger than a primary
that knows its limit (LimitsMessageSize) would take. While a destination has spooled messages
(this Bus's, or another process's it saw at its first publish there or in a drain round), new
ones for it are spooled too, so the drain keeps their order. Both down: BackendUnavailable
naming both.

Lines are named after the primary (adapters.spool_names): a Bus drains only what was spooled
for the destination its own primary delivers to. ``drain()`` forwards spooled messages to the
primary in order, deleting each batch only after the primary confirmed it; an entry the primary
refuses then is moved aside with its reason (``Spool.refuse``) and the drain goes on. Consuming,
request/reply, replay and seek use the primary directly.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from interchange.adapters.capabilities import Capabilities
from interchange.adapters.circuit import Circuit, Stats
from interchange.adapters.errors import BackendUnavailable, PublishRejected, TransportError
from interchange.adapters.message import Delivery, DeliveryHandler, TransportMessage
from interchange.adapters.protocols import (
    CommandTransport,
    EventTransport,
    FailsFast,
    HasBacklog,
    Spool,
    Start,
    Subscription,
    SweepsDeadLetters,
    Verdict,
)
from interchange.adapters.spool_names import namespace, refuse_oversized

log = logging.getLogger("interchange.adapters.failover")
_CLAIM_SECONDS = 60.0
"""How long a drainer holds a line without renewing (it renews every batch)."""


Forward = Callable[[str, list[TransportMessage]], None]
"""How the primary takes a batch for one destination."""
Entry = tuple[str, TransportMessage]
"""A spooled message with its spool id."""


class _Failover:
    """Circuit, spool and drain for one side; the subclasses add the verbs of their protocol."""

    capabilities: Capabilities

    def __init__(
        self,
        primary: object,
        spool: Spool,
        side: str,
        cool_down: float,
        within: float,
        identity: str = "unnamed",
    ) -> None:
        if isinstance(primary, FailsFast):
            primary.fail_fast(within)  # the spool takes over instead of the caller waiting
        self.spool = spool
        self.side = side
        self.namespace = namespace(side, identity)
        """Every line of this side starts with it: other primaries' lines are not ours."""
        self._looked: set[str] = set()
        self.circuit = Circuit(cool_down=cool_down)
        self.stats = Stats()
        self._backlog: set[str] = set()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.owner = f"{side}-{uuid.uuid4().hex}"
        self._forward = self._verbs()  # verb -> how the primary takes a batch
        self._primary = primary

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """The primary's dead letters (the spool holds none)."""
        if not isinstance(self._primary, SweepsDeadLetters):
            raise TypeError(f"{type(self._primary).__name__} cannot go through dead letters")
        return self._primary.sweep(channel, decide)

    def _lock(self, line: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(line, threading.Lock())

    def _publish(self, verb: str, destination: str, messages: list[TransportMessage]) -> None:
        line = f"{self.namespace}{verb}:{destination}"
        forward = self._forward[verb]
        with self._lock(line):
            if line not in self._looked:
                self._look(line)
            if line not in self._backlog and self.circuit.allows():
                try:
                    forward(destination, messages)
                    self.circuit.succeeded()
                    return
                except BackendUnavailable as primary_down:
                    self.circuit.failed()
                    self._park(line, messages, primary_down)
                    return
            self._park(line, messages, None)

    def _look(self, line: str) -> None:
        """Before a first publish to a destination: another process's backlog for it (its
        primary down, ours up) is one to spool behind, or ours would overtake it."""
        self._looked.add(line)  # once: a silent spool costs one publish, not each of them
        try:
            if self.spool.head(line, 1):
                self._backlog.add(line)
        except TransportError as error:  # the drain rounds look again, every drain_interval
            log.debug("spool of %s not looked at: %s", line, error)

    def _park(
        self, line: str, messages: list[TransportMessage], primary_down: BackendUnavailable | None
    ) -> None:
        refuse_oversized(self._primary, line, messages)
        try:
            self.spool.append(line, messages)
        except BackendUnavailable as spool_down:
            reason = primary_down or "its circuit is open"
            raise BackendUnavailable(
                f"neither the primary ({reason}) nor the fallback spool ({spool_down}) took "
                f"{len(messages)} message(s) for {line}: nothing was stored",
                failed=[m.id for m in messages],
            ) from spool_down
        self._backlog.add(line)
        self.stats.spooled += len(messages)

    # -- drain ----------------------------------------------------------------------------

    def drain(self, batch: int = 500, progress: Callable[[int], None] | None = None) -> int:
        """Forward spooled messages to the primary, oldest first per line. Returns how many
        were forwarded; stops early when the primary is still down."""
        forwarded = 0
        for line in self.spool.lines():
            if not line.startswith(self.namespace):
                continue  # another side's, or spooled for another primary
            with self._lock(line):  # maybe another process's backlog: publish behind it
                self._backlog.add(line)
            for count in self._drain_line(line, batch):
                forwarded += count
                if progress:
                    progress(count)
        return forwarded

    def _drain_line(self, line: str, batch: int) -> Iterator[int]:
        try:
            yield from self._drain_claimed(line, batch)
        finally:
            self.spool.release(line, self.owner)

    def _drain_claimed(self, line: str, batch: int) -> Iterator[int]:
        _, verb, destination = line.split(":", 2)
        forward = self._forward[verb]
        while self.spool.claim(line, self.owner, _CLAIM_SECONDS) and self.circuit.allows():
            entries = self.spool.head(line, batch)
            if not entries:
                with self._lock(line):  # publishers wait: "empty" and "direct again" together
                    if not self.spool.head(line, 1):
                        self._backlog.discard(line)
                        return
                continue
            try:
                forward(destination, [message for _, message in entries])
                done = entries
            except BackendUnavailable:
                self.circuit.failed()
                return
            except PublishRejected as rejected:
                # which of them? Those it lists as failed go one at a time: the refused aside,
                # the others on, in order (none listed: all of them; any it had stored
                # nevertheless arrive twice, and consumers dedupe)
                failed = set(rejected.failed)
                retried = [entry for entry in entries if entry[1].id in failed] or entries
                stored = [entry for entry in entries if entry not in retried]
                done, reachable = self._one_by_one(line, forward, destination, retried)
                done = stored + done
                if not reachable:
                    self.spool.remove(line, [spool_id for spool_id, _ in done])
                    return
            self.circuit.succeeded()
            self.spool.remove(line, [spool_id for spool_id, _ in done])
            self.stats.drain_started = self.stats.drain_started or time.monotonic()
            self.stats.drained += len(done)  # (the refused ones were set aside, not drained)
            yield len(done)

    def _one_by_one(
        self, line: str, forward: Forward, destination: str, entries: list[Entry]
    ) -> tuple[list[Entry], bool]:
        """(entries the primary stored, whether it could still be reached)."""
        done: list[Entry] = []
        for entry in entries:
            try:
                forward(destination, [entry[1]])
            except PublishRejected as refused:
                log.error(
                    "spooled message %s refused by the primary, set aside: %s", entry[1].id, refused
                )
                self.spool.refuse(line, [entry], str(refused))
                continue
            except BackendUnavailable:
                self.circuit.failed()
                return done, False
            done.append(entry)
        return done, True

    def _verbs(self) -> dict[str, Forward]:
        raise NotImplementedError

    def status(self, depth: bool = True) -> dict[str, Any]:
        """``depth=False``: without the spool's depth and refused count, the figures that ask
        the spool."""
        found: dict[str, Any] = {"circuit": self.circuit.state}
        if depth:
            found["spool_depth"] = self.spool.depth(self.namespace)
            found["refused"] = self.spool.refused(self.namespace)
        return found | {
            "spooled": self.stats.spooled,
            "drained": self.stats.drained,
            "drain_rate": round(self.stats.rate(), 1),
        }


class FailoverCommandTransport(_Failover):
    """A CommandTransport: publishing verbs go through the circuit and the spool; consuming,
    declaring and request/reply go to the primary."""

    def __init__(
        self,
        primary: CommandTransport,
        spool: Spool,
        side: str = "commands",
        cool_down: float = 2.0,
        within: float = 5.0,
        identity: str = "unnamed",
    ) -> None:
        self.primary = primary
        self.capabilities = primary.capabilities
        super().__init__(primary, spool, side, cool_down, within, identity)

    def _verbs(self) -> dict[str, Forward]:
        def broadcast_each(exchange: str, messages: list[TransportMessage]) -> None:
            for message in messages:
                self.primary.broadcast(exchange, message)

        return {"send": self.primary.send_many, "broadcast": broadcast_each}

    def send(self, queue: str, message: TransportMessage) -> None:
        self._publish("send", queue, [message])

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        self._publish("send", queue, messages)

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self._publish("broadcast", exchange, [message])

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int | None = None,
    ) -> Subscription:
        return self.primary.consume(queue, handler, exchange=exchange, prefetch=prefetch)

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self.primary.declare(queue, exchange=exchange)

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        return self.primary.backlog(channel, group) if isinstance(self.primary, HasBacklog) else {}

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        return self.primary.request(queue, message, timeout)

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self.primary.reply(reply_to, message)

    def close(self) -> None:
        self.primary.close()


class FailoverEventTransport(_Failover):
    """An EventTransport: publishing goes through the circuit and the spool; subscribing,
    replay and seek go to the primary."""

    def __init__(
        self,
        primary: EventTransport,
        spool: Spool,
        side: str = "events",
        cool_down: float = 2.0,
        within: float = 5.0,
        identity: str = "unnamed",
    ) -> None:
        self.primary = primary
        self.capabilities = primary.capabilities
        super().__init__(primary, spool, side, cool_down, within, identity)

    def _verbs(self) -> dict[str, Forward]:
        return {"publish": self.primary.publish_many}

    def publish(self, topic: str, message: TransportMessage) -> None:
        self._publish("publish", topic, [message])

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        self._publish("publish", topic, messages)

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
        workers: int = 1,
    ) -> Subscription:
        return self.primary.subscribe(topic, group, handler, start=start, workers=workers)

    def replay(
        self, topic: str, *, since: Start = "earliest", until: datetime | None = None
    ) -> Iterator[Delivery]:
        return self.primary.replay(topic, since=since, until=until)

    def seek(self, topic: str, group: str, to: Start) -> None:
        self.primary.seek(topic, group, to)

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        return self.primary.backlog(channel, group) if isinstance(self.primary, HasBacklog) else {}

    def close(self) -> None:
        self.primary.close()
