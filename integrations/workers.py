"""The handlers registered on a Bus, and the consumers it runs for them between start and stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from interchange.adapters import Start, Subscription
from interchange.config import RetryPolicy
from interchange.contracts import Contract
from interchange.metrics import InFlight

_CLOSING = 2.0
"""Seconds consumer threads with no delivery in hand get to end their loop and close their
connection, whatever is left of the grace period: bounded on its own, never a handler."""


@dataclass(frozen=True)
class Handler:
    """One registration: the verb it was registered with and its arguments."""

    verb: Literal["handles", "subscribes", "handles_dead_letters"]
    contract: type[Contract]
    func: Callable[..., Any]
    group: str | None = None
    concurrency: int | None = None
    retry: RetryPolicy | None = None
    start: Start = "earliest"


@dataclass(frozen=True)
class Registration:
    channel: str
    start_consumer: Callable[[], Subscription]
    concurrency: int

    def start(self) -> list[Subscription]:
        return [self.start_consumer() for _ in range(self.concurrency)]


class Workers:
    """Registered handlers' consumers. A handler registered while running starts at once."""

    def __init__(self, in_flight: InFlight | None = None) -> None:
        self._registrations: list[Registration] = []
        self._running: list[Subscription] = []
        self._started = False
        self._starting = False
        self._generation = 0  # bumped by stop(): a start still under way is then abandoned
        self._lock = threading.Lock()
        self.in_flight = in_flight or InFlight()
        """The deliveries this Bus's handlers are in the middle of: what a stop waits for."""

    @property
    def started(self) -> bool:
        return self._started

    def consumers(self) -> list[tuple[str, bool]]:
        """(name, alive) of every consumer started: a dead thread is a consumer not running."""
        with self._lock:
            running = list(self._running)
        return [(s.name, s.alive) for s in running]

    def register(self, registration: Registration) -> None:
        with self._lock:
            self._registrations.append(registration)
            if self._started:
                self._running.extend(registration.start())

    def start(self, prepare: Callable[[], None]) -> None:
        """Run ``prepare`` (declarations), then start every consumer. Idempotent. On an error,
        the consumers this call started are stopped and the error raised, so it can be called
        again. The lock is not held while a broker is waited for: ``stop()`` from another
        thread (a SIGTERM while a broker does not answer) stops what started so far at once,
        and this call then stops what it starts afterwards and returns."""
        with self._lock:
            if self._started or self._starting:
                return
            self._starting, generation = True, self._generation
        try:
            prepare()
            index = 0
            while True:
                with self._lock:
                    if self._generation != generation:
                        return  # stopped meanwhile
                    if index == len(self._registrations):
                        self._started = True
                        return
                    registration = self._registrations[index]
                index += 1
                started = registration.start()
                with self._lock:
                    current = self._generation == generation
                    if current:
                        self._running.extend(started)
                if not current:
                    _stop_all(started, 10.0, self.in_flight)
                    return
        except BaseException:
            with self._lock:
                current = self._generation == generation
            if current:
                self.stop()
            raise
        finally:
            with self._lock:
                if self._generation == generation:
                    self._starting = False

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every consumer: all take no further message at once, then each finishes the
        delivery in hand within ``timeout`` seconds in all. True when all finished in time."""
        with self._lock:
            running, self._running = self._running, []
            self._started = self._starting = False
            self._generation += 1
        return _stop_all(running, timeout, self.in_flight)


def _stop_all(running: list[Subscription], timeout: float, in_flight: InFlight) -> bool:
    """Stop ``running``; True unless a handler still ran when ``timeout`` ran out."""
    for subscription in running:
        subscription.stop()
    deadline = time.monotonic() + timeout
    idle = in_flight.wait_idle(deadline - time.monotonic())
    # With no delivery in hand, the threads are only ending their loops and closing their
    # connections: that gets _CLOSING seconds even past the grace (a grace of 0 stopped an idle
    # service with "a handler outlived the grace period"); with one in hand, only the grace.
    closing = max(deadline, time.monotonic() + _CLOSING) if idle else deadline
    for subscription in running:
        subscription.close(max(0.0, closing - time.monotonic()))
    return idle and in_flight.wait_idle(0)  # a delivery taken before the stop took hold counts
