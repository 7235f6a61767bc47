"""Dedupe stores: delivery is at least once, so consumers remember handled message ids.

An id is remembered only after its handler succeeded: a message whose handler crashed must
still be handled when it is redelivered. Keys are ``<scope>|<message id>``, the scope naming the
channel and group; ``forget(scope)`` lets a deliberate re-read (seek) reach the handler again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol


class DedupeStore(Protocol):
    def seen(self, key: str) -> bool:
        """True when ``key`` was remembered and has not expired."""

    def remember(self, key: str) -> None:
        """Remember ``key`` for the store's time to live."""

    def forget(self, scope: str) -> None:
        """Forget every key of ``scope``, so its messages are handled again."""


class MemoryDedupeStore:
    """Bounded, expiring, thread-safe; per process."""

    def __init__(self, ttl: float = 3600.0, max_entries: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            expiry = self._expiry.get(key)
            return expiry is not None and expiry > now

    def remember(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._expiry[key] = now + self.ttl
            self._expiry.move_to_end(key)
            # entries are in expiry order, so the stale ones are at the front
            while self._expiry and (
                len(self._expiry) > self.max_entries or next(iter(self._expiry.values())) <= now
            ):
                self._expiry.popitem(last=False)

    def forget(self, scope: str) -> None:
        prefix = scope + "|"
        with self._lock:
            for key in [k for k in self._expiry if k.startswith(prefix)]:
                del self._expiry[key]


def open_dedupe(url: str | None, ttl: float) -> DedupeStore:
    """The dedupe store a URL names: ``redis://...`` is shared by every process using it;
    None or ``memory://`` keeps ids in this process only."""
    if url is None or url.startswith("memory:"):
        return MemoryDedupeStore(ttl=ttl)
    if url.startswith(("redis://", "rediss://")):
        from interchange.adapters.redis import RedisDedupeStore

        return RedisDedupeStore(url, ttl=ttl)
    raise ValueError(f"dedupe must be memory:// or a redis:// URL, not {url!r}")
