"""A thread-safe record of deliveries, used as a handler by the conformance tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

from interchange.adapters import ACK, Delivery, Outcome
from interchange.testing import wait_until


class Inbox:
    def __init__(self, answer: Callable[[Delivery], Outcome] | None = None) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.answer = answer

    def __call__(self, delivery: Delivery) -> Outcome:
        with self.lock:
            self.deliveries.append(delivery)
        return self.answer(delivery) if self.answer else ACK

    def ids(self) -> list[str]:
        with self.lock:
            return [d.message.id for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        wait_until(
            lambda: len(self.ids()) >= count,
            timeout,
            message=lambda: f"expected {count} deliveries, got {len(self.ids())}",
        )
        return self.ids()


def accepted(publish: Callable[[], None]) -> bool:
    """Whether the broker took a message now; False while it is (still) down."""
    try:
        publish()
    except Exception:
        return False
    return True
