"""A consumer loop on a thread of its own, shared by the adapters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

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


class ConsumerThread:
    """Runs ``step(stop)`` until closed. ``step`` must return within about ``poll`` seconds so
    that close() is prompt; it is never interrupted in the middle of a delivery."""

    def __init__(self, name: str, step: Callable[[threading.Event], None]) -> None:
        self._stop = threading.Event()
        self._step = step
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step(self._stop)
            except Exception:  # a transport bug must not silently end consumption
                log.exception("consumer step failed on %s", self._thread.name)
                self._stop.wait(CRASH_DELAY)

    @property
    def name(self) -> str:
        return self._thread.name

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
