"""Helpers for testing services built on the Bus, shipped for users' own test suites.

    from interchange.testing import Recorder, wait_until

    seen = Recorder()
    bus.handles(PlaceOrder)(seen)          # records (contract, ctx) pairs
    with bus:
        bus.send(PlaceOrder(...))
        wait_until(lambda: len(seen) == 1)

Waiting is always on a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from interchange.context import HandlerContext


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
