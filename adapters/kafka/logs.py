"""librdkafka's own log lines, routed into Python logging and rate-limited.

Left alone, librdkafka prints every connection failure to stderr (``%3|...|FAIL|...``): hundreds
of lines in a short outage. Every client this adapter makes hands librdkafka the logger
``interchange.adapters.kafka.librdkafka`` instead, whose filter lets one line of each kind
(librdkafka's facility: FAIL, ERROR, ...) through per ``EVERY`` seconds and says how many of
that kind it held back.
"""

from __future__ import annotations

import logging
import threading
import time

EVERY = 30.0
"""Seconds between two lines of the same kind."""


class RateLimit(logging.Filter):
    def __init__(self, every: float = EVERY) -> None:
        super().__init__()
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # confluent-kafka logs ("%s [%s] %s", facility, client name, text)
        args = record.args if isinstance(record.args, tuple) else ()
        kind = str(args[0]) if args else record.getMessage()[:40]
        now = time.monotonic()
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


LOGGER = logging.getLogger("interchange.adapters.kafka.librdkafka")
LOGGER.addFilter(RateLimit())
