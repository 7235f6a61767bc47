"""The consumer machinery every adapter shares: the thread a consumer loop runs on, the handler
call that never kills it, reconnect backoff, and a transport's open/closed bookkeeping.

A broker's consumer module supplies only ``step(stop)`` — one round of its loop — and lets
ConsumerThread run it; its transport keeps its consumers in a ``Consumers`` and closes them all
at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.message import Delivery, DeliveryHandler, Outcome, Retry

log = logging.getLogger("interchange.adapters")

CRASH_DELAY = 0.1
"""Redelivery delay after a handler raised instead of answering: avoids a hot crash loop."""


def run_handler(handler: DeliveryHandler, delivery: Delivery) -> Outcome:
    """Call a handler; a raised exception counts as Retry, never kills the consumer."""
    try:
        return handler(delivery)
    except Exception as error:  # the consumer must survive any handler bug
        log.exception("handler raised on %s; will redeliver", delivery.channel)
        return Retry(delay=CRASH_DELAY, reason=f"{type(error).__name__}: {error}")


class Backoff:
    """Waits between reconnect attempts: ``first`` seconds, doubling up to ``limit``."""

    def __init__(self, first: float = 0.2, limit: float = 5.0) -> None:
        self.first, self.limit = first, limit
        self.next = first

    def reset(self) -> None:
        self.next = self.first

    def wait(self, stop: threading.Event) -> None:
        """Sleep the current delay (cut short by ``stop``), then double it."""
        stop.wait(self.next)
        self.next = min(self.next * 2, self.limit)


T = TypeVar("T")


class Abandonable(Generic[T]):
    """A blocking call (a connect that waits out its timeout) run on a helper thread, so the
    consumer loop that needs it can still answer a stop within a tenth of a second.

    ``result(stop)`` returns the call's value, raises its error, or returns None once ``stop``
    is set first; the call then finishes on its own and ``discard`` gets what it returns (a
    connection to drop)."""

    def __init__(self, name: str, call: Callable[[], T], discard: Callable[[T], None]) -> None:
        self._call, self._discard = call, discard
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self._value: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # handed to the caller, or dropped once abandoned
            self._error = error
        with self._lock:
            self._done.set()
            abandoned = self._abandoned
        if abandoned and self._value is not None:
            try:
                self._discard(self._value)
            except Exception:
                log.debug("discarding an abandoned result failed", exc_info=True)

    def result(self, stop: threading.Event) -> T | None:
        while not self._done.wait(0.1):
            if stop.is_set():
                with self._lock:
                    if not self._done.is_set():
                        self._abandoned = True
                        return None
        if self._error is not None:
            raise self._error
        return self._value


class ConsumerThread:
    """Runs ``step(stop)`` until closed. ``step`` must return within about a second so that
    close() is prompt; it is never interrupted in the middle of a delivery."""

    def __init__(
        self,
        name: str,
        step: Callable[[threading.Event], None],
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self._stop = threading.Event()
        self._step = step
        self._on_exit = on_exit
        """Runs on the loop's own thread once it ended (e.g. acknowledging what it handled)."""
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step(self._stop)
                except Exception:  # a transport bug must not silently end consumption
                    log.exception("consumer step failed on %s", self._thread.name)
                    self._stop.wait(CRASH_DELAY)
        except BaseException as error:  # SystemExit from a handler: the thread ends, say so
            log.critical("consumer %s ended: %r (alive is False now)", self._thread.name, error)
            raise
        if self._on_exit is not None:
            try:
                self._on_exit()
            except Exception:
                log.exception("consumer exit failed on %s", self._thread.name)

    @property
    def name(self) -> str:
        return self._thread.name

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def stop(self) -> None:
        """Ask the loop to end after the delivery in hand; returns at once."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        """Whether the loop is still running (a handler outlived a close's timeout)."""
        return self._thread.is_alive()

    def close(self, timeout: float = 10.0) -> None:
        """Stop, and wait up to ``timeout`` seconds for the loop to end."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class OnThread:
    """A consumer whose loop is ``self.thread``: its name and whether it still runs (the
    ``Subscription`` protocol's ``name`` and ``alive``)."""

    thread: ConsumerThread

    @property
    def name(self) -> str:
        return self.thread.name

    @property
    def alive(self) -> bool:
        return self.thread.alive


class Stoppable(Protocol):
    def stop(self) -> None:
        """Ask to stop; returns at once."""

    def close(self, timeout: float = 10.0) -> None:
        """Stop and release; waits for the consumer's loop to end."""


S = TypeVar("S", bound=Stoppable)


class Consumers:
    """A transport's consumers, and whether the transport is still open.

    ``close()`` first asks every consumer to stop, then waits for each: consumers wind down
    together instead of one after another.
    """

    def __init__(self) -> None:
        self._items: list[Stoppable] = []
        self._lock = threading.Lock()
        self.closed = False

    def check_open(self) -> None:
        """Raise BackendUnavailable once the transport was closed."""
        if self.closed:
            raise BackendUnavailable("transport is closed")

    def add(self, consumer: S) -> S:
        with self._lock:
            self._items.append(consumer)
        return consumer

    def close(self, timeout: float = 10.0) -> None:
        self.closed = True
        with self._lock:
            items, self._items = self._items, []
        for item in items:
            item.stop()
        for item in items:
            item.close(timeout)
