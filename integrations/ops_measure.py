"""Measurements the ops port makes that wait for a broker (a backend probe, a queue's backlog,
the fallback spool's depth), bounded in time so that a broker that refuses or does not answer
at all never holds, nor breaks, an answer of /readyz or /metrics.

Each measurement runs on a thread of its own, at most one at a time per measurement (/readyz
reuses a backend's probe for ``_FRESH`` seconds; /metrics measures afresh each scrape). A
request waits for the ones it needs until its deadline (``WITHIN`` seconds in all): one that
raised, or had not answered by then, is a Reading with an error and no value, which the
request reports (the backend down, the gauge left out, ``interchange_measure_errors_total``
counted). A measurement still waiting for a silent broker
is not started again until it ends: a scrape every few seconds never piles up threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WITHIN = 1.5
"""Seconds a request waits for its measurements in all: a Prometheus scrape times out at 10 s
by default, the supervisor of ``--workers`` asks each worker with a 2.5 s timeout."""
_FRESH = 1.0
"""Seconds a finished measurement is reused: probes open real connections."""


@dataclass(frozen=True)
class Reading:
    value: Any
    """None when ``error`` says why there is none."""
    error: str | None = None


class Measurer:
    """Runs named measurements on threads of their own; see the module's docstring."""

    def __init__(self, within: float = WITHIN, fresh: float = _FRESH) -> None:
        self.within = within
        self.fresh = fresh
        self._last: dict[str, tuple[float, Reading]] = {}
        self._running: dict[str, threading.Thread] = {}
        self._errors: dict[str, int] = {}
        self._lock = threading.Lock()

    def measure(
        self, jobs: dict[str, Callable[[], Any]], reuse: float | None = None
    ) -> dict[str, Reading]:
        """The reading of each of ``jobs`` (name → what measures it), within ``self.within``
        seconds in all; one taken less than ``reuse`` seconds ago (default ``fresh``) is
        reused."""
        reuse = self.fresh if reuse is None else reuse
        deadline = time.monotonic() + self.within
        waiting: list[threading.Thread] = []
        with self._lock:
            for name, job in jobs.items():
                running = self._running.get(name)
                if running is None and not self._fresh(name, reuse):
                    running = threading.Thread(
                        target=self._run,
                        args=(name, job),
                        name=f"interchange-measure-{name}",
                        daemon=True,
                    )
                    self._running[name] = running
                    running.start()
                if running is not None:
                    waiting.append(running)
        for thread in waiting:
            thread.join(max(0.0, deadline - time.monotonic()))
        readings = {}
        with self._lock:
            for name in jobs:
                if name in self._running:  # still waiting for its broker
                    reading = Reading(None, f"no answer within {self.within:g}s")
                else:
                    reading = self._last[name][1]
                if reading.error is not None:
                    kind = name.split(":", 1)[0]
                    self._errors[kind] = self._errors.get(kind, 0) + 1
                readings[name] = reading
        return readings

    def errors(self) -> dict[str, int]:
        """Failed readings served so far, by kind of measurement (the name before a ':')."""
        with self._lock:
            return dict(self._errors)

    def _fresh(self, name: str, reuse: float) -> bool:
        last = self._last.get(name)
        return last is not None and time.monotonic() - last[0] < reuse

    def _run(self, name: str, job: Callable[[], Any]) -> None:
        try:
            reading = Reading(job())
        except Exception as error:  # any failure of a measurement is reported, never raised
            reading = Reading(None, f"{type(error).__name__}: {error}")
        with self._lock:
            self._last[name] = (time.monotonic(), reading)
            del self._running[name]
