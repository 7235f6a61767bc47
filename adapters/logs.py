"""Rate-limited log lines, for what repeats while an outage lasts.

A loop that retries every half second logs the same warning every half second: hundreds of
lines a minute that hide everything else. A logger given a ``RateLimit`` filter lets one line
of each kind through per ``EVERY`` seconds, and the next line of that kind let through says how
many were held back. The kind is the record's first argument (librdkafka's facility, the side
of a drain), else the start of its message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

EVERY = 30.0
"""Seconds between two lines of the same kind."""


class RateLimit(logging.Filter):
    def __init__(self, every: float = EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # e.g. confluent-kafka logs ("%s [%s] %s", facility, client name, text)
        args = record.args if isinstance(record.args, tuple) else ()
        kind = str(args[0]) if args else record.getMessage()[:40]
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            record.msg = f"{record.msg} ({held} more {kind} line(s) held back)"
        return True
