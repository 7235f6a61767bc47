"""Helpers for testing services built on the Bus, shipped for users' own test suites.

    from interchange.testing import Recorder, isolated, make_context, wait_until

    seen = Recorder()
    bus.handles(PlaceOrder)(seen)          # records (contract, ctx) pairs
    with bus:
        bus.send(PlaceOrder(...))
        wait_until(lambda: len(seen) == 1)

    with isolated(app.bus) as bus:         # the app's own bus, its handlers intact, on memory://
        bus.send(PlaceOrder(...))

    ctx = make_context(PlaceOrder(...))    # call a handler directly; ctx.sender records
    place_order(PlaceOrder(...), ctx)      #   what it sends and publishes

Waiting is always on a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from interchange.bus import Bus
from interchange.config import Settings
from interchange.context import HandlerContext
from interchange.contracts import Command, Contract, Envelope, Event

__all__ = [
    "Outbox",
    "Recorder",
    "WaitTimeout",
    "isolated",
    "make_context",
    "memory_settings",
    "wait_until",
]


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, *, message: str | Callable[[], str] = ""
) -> None:
    """Poll ``condition`` until it is true; raise WaitTimeout (an AssertionError) at the
    deadline, with ``message`` (or what it returns, evaluated then) as the explanation."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"condition not met within {timeout}s. {text}".strip())
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


class Recorder:
    """A handler that records what it received, thread safe. Optionally runs ``then`` too."""

    def __init__(self, then: Callable[[Any, HandlerContext], Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[Any, HandlerContext]] = []
        self._then = then

    def __call__(self, contract: Any, ctx: HandlerContext) -> Any:
        with self._lock:
            self._calls.append((contract, ctx))
        return self._then(contract, ctx) if self._then else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    @property
    def contracts(self) -> list[Any]:
        with self._lock:
            return [c for c, _ in self._calls]

    @property
    def contexts(self) -> list[HandlerContext]:
        with self._lock:
            return [ctx for _, ctx in self._calls]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until at least ``count`` deliveries were recorded; return the contracts."""
        wait_until(
            lambda: len(self) >= count,
            timeout,
            message=lambda: f"expected {count} deliveries, got {len(self)}",
        )
        return self.contracts


def memory_settings(like: Settings | None = None, **overrides: Any) -> Settings:
    """Settings for a test: those of ``like`` (routes, retries, contracts...) on a memory://
    broker of the test's own, with a channel prefix of its own, a dedupe store in this process,
    no fallback — and no ``INTERCHANGE_*`` variable of the shell overriding any of it."""
    url = f"memory://test-{uuid.uuid4().hex[:12]}"
    values = like.model_dump() if like is not None else {}
    values.update(
        backends={"commands": url, "events": url},
        channel_prefix=f"t-{uuid.uuid4().hex[:10]}.",
        dedupe=None,
    )
    values.update(overrides)
    return Settings.without_environment(**values)


@contextmanager
def isolated(bus: Bus, **overrides: Any) -> Iterator[Bus]:
    """A started Bus like ``bus`` — same settings, contracts and every handler registered on it
    — on a memory:// broker of its own; closed afterwards. ``bus`` itself is never started or
    touched, so a module-level application bus can be tested as it is:

        with isolated(app.bus) as bus:
            bus.send(PlaceOrder(order_id="A-1", quantity=1))
    """
    twin = Bus(memory_settings(bus.settings, **overrides), contracts=bus.contracts)
    for handler in bus.handlers:
        if handler.verb == "handles":
            twin.handles(
                handler.contract,  # type: ignore[arg-type]
                group=handler.group,
                concurrency=handler.concurrency,
                retry=handler.retry,
            )(handler.func)
        elif handler.verb == "subscribes":
            twin.subscribes(
                handler.contract,  # type: ignore[arg-type]
                group=handler.group or "",
                start=handler.start,
                concurrency=handler.concurrency,
                retry=handler.retry,
            )(handler.func)
        else:
            twin.handles_dead_letters(handler.contract, group=handler.group)(handler.func)
    try:
        yield twin.start()
    finally:
        twin.close()


class Outbox:
    """A Sender that records what a handler sends, broadcasts and publishes through its ctx,
    for handlers called directly in a test. ``request`` answers with ``replies[type]``."""

    def __init__(self, replies: dict[type[Command], Contract] | None = None) -> None:
        self.sent: list[Command] = []
        self.broadcasts: list[Command] = []
        self.published: list[Event] = []
        self.options: list[dict[str, Any]] = []
        self.replies = replies or {}

    def _keep(self, into: list[Any], contract: Any, options: dict[str, Any]) -> str:
        into.append(contract)
        self.options.append(options)
        return str(uuid.uuid4())

    def send(self, command: Command, **options: Any) -> str:
        return self._keep(self.sent, command, options)

    def broadcast(self, command: Command, **options: Any) -> str:
        return self._keep(self.broadcasts, command, options)

    def publish(self, event: Event, **options: Any) -> str:
        return self._keep(self.published, event, options)

    def request(
        self, command: Command, *, timeout: float | None = None, **options: Any
    ) -> Contract:
        self._keep(self.sent, command, options)
        try:
            return self.replies[type(command)]
        except KeyError:
            raise AssertionError(f"no reply given for {type(command).__name__}") from None


def make_context(
    message: Contract,
    *,
    sender: Any = None,
    attempt: int = 1,
    group: str | None = None,
    **envelope: Any,
) -> HandlerContext:
    """The ``ctx`` a handler would get with ``message``, for calling it directly. ``sender``
    defaults to a fresh Outbox (``ctx.sender``), which records what the handler sends;
    ``envelope`` sets Envelope fields (``correlation_id``, ``headers``...)."""
    wrapped = Envelope.wrap(message, source=envelope.pop("source", "test"), **envelope)
    return HandlerContext(wrapped, attempt, group, sender if sender is not None else Outbox())
