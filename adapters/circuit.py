"""The failover transports' circuit (is the primary tried?) and counters."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("interchange.adapters.failover")


@dataclass
class Circuit:
    """closed → (failure) → open → (after ``cool_down``) one probe → closed or open again."""

    cool_down: float = 2.0
    state: str = "closed"
    failures: int = 0
    _retry_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self) -> bool:
        """May this call try the primary? While open, one caller per cool-down probes."""
        with self._lock:
            if self.state == "closed":
                return True
            if time.monotonic() >= self._retry_at:
                self.state = "half-open"
                self._retry_at = time.monotonic() + self.cool_down
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            if self.state != "closed":
                log.warning("primary answers again: circuit closed")
            self.state = "closed"

    def failed(self) -> None:
        with self._lock:
            if self.state == "closed":
                log.warning("primary unreachable: circuit open, spooling")
            self.state = "open"
            self.failures += 1
            self._retry_at = time.monotonic() + self.cool_down


@dataclass
class Stats:
    spooled: int = 0
    drained: int = 0
    drain_started: float | None = None

    def rate(self) -> float:
        if not self.drain_started or not self.drained:
            return 0.0
        return self.drained / max(1e-9, time.monotonic() - self.drain_started)
