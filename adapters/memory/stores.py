"""Stores in this process: a failover spool and a dedupe store. For tests and single-process
services; nothing here survives the process."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.message import TransportMessage


class MemorySpool:
    """A spool in this process: for tests of the failover logic, never for production.
    ``down = True`` makes it refuse appends, as an unreachable Redis would."""

    def __init__(self, url: str = "memory://", *, timeout: float = 5.0) -> None:
        self._lines: dict[str, list[tuple[str, TransportMessage]]] = {}
        self._next = 0
        self.down = False
        self._claims: dict[str, tuple[str, float]] = {}
        self._reports: dict[str, tuple[dict[str, Any], float]] = {}
        self._refused: dict[str, list[tuple[TransportMessage, str]]] = {}
        self._lock = threading.Lock()

    def append(self, line: str, messages: list[TransportMessage]) -> None:
        if self.down:
            raise BackendUnavailable("memory spool is down")
        with self._lock:
            for message in messages:
                self._next += 1
                self._lines.setdefault(line, []).append((str(self._next), message))

    def head(self, line: str, count: int) -> list[tuple[str, TransportMessage]]:
        with self._lock:
            return list(self._lines.get(line, [])[:count])

    def remove(self, line: str, ids: list[str]) -> None:
        with self._lock:
            gone = set(ids)
            self._lines[line] = [e for e in self._lines.get(line, []) if e[0] not in gone]

    def lines(self) -> list[str]:
        with self._lock:
            return [line for line, entries in self._lines.items() if entries]

    def depth(self, prefix: str = "") -> int:
        with self._lock:
            return sum(len(e) for line, e in self._lines.items() if line.startswith(prefix))

    def refuse(self, line: str, entries: list[tuple[str, TransportMessage]], reason: str) -> None:
        with self._lock:
            gone = {spool_id for spool_id, _ in entries}
            self._lines[line] = [e for e in self._lines.get(line, []) if e[0] not in gone]
            self._refused.setdefault(line, []).extend((m, reason) for _, m in entries)

    def refused(self, prefix: str = "") -> int:
        with self._lock:
            return sum(len(e) for line, e in self._refused.items() if line.startswith(prefix))

    def claim(self, line: str, owner: str, seconds: float) -> bool:
        with self._lock:
            holder, until = self._claims.get(line, (owner, 0.0))
            if holder != owner and until > time.monotonic():
                return False
            self._claims[line] = (owner, time.monotonic() + seconds)
            return True

    def release(self, line: str, owner: str) -> None:
        with self._lock:
            if self._claims.get(line, (None, 0.0))[0] == owner:
                del self._claims[line]

    def report(self, process: str, status: dict[str, Any] | None, ttl: float) -> None:
        with self._lock:
            if status is None:
                self._reports.pop(process, None)
            else:
                self._reports[process] = (status, time.monotonic() + ttl)

    def reports(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return {p: status for p, (status, until) in self._reports.items() if until > now}

    def close(self) -> None:
        """Nothing to release."""


class MemoryDedupeStore:
    """Bounded, expiring, thread-safe; per process.

    It remembers the last ``max_entries`` handled ids (about 270 bytes each, measured): a
    redelivery comes within a broker's unacknowledged window (prefetch, uncommitted offsets,
    pending entries), thousands of messages, not a million. At 1,000,000 a consumer working
    through a large backlog grew to 380 MB on this store alone; share ids across processes,
    or for longer, with ``dedupe = "redis://..."``."""

    def __init__(
        self, url: str = "memory://", *, ttl: float = 3600.0, max_entries: int = 100_000
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._sweep_at = 0.0
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        # Without the lock: one look-up is atomic, and this runs for every message consumed.
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > time.monotonic()

    def remember(self, key: str) -> None:
        now = time.monotonic()
        expiry = self._expiry
        with self._lock:
            expiry[key] = now + self.ttl
            expiry.move_to_end(key)
            while len(expiry) > self.max_entries:
                expiry.popitem(last=False)
            if now < self._sweep_at:
                return
            # entries are in expiry order, so the stale ones are at the front; looked for
            # once a second rather than at every call (seen() checks expiry itself)
            self._sweep_at = now + 1.0
            while expiry and next(iter(expiry.values())) <= now:
                expiry.popitem(last=False)

    def remember_in(self, transaction: object, key: str) -> None:
        """Remember ``key`` as part of the caller's transaction. This store lives in the process,
        outside any transaction: it remembers at once (so the exactly-once pattern written for
        ``RedisDedupeStore.remember_in`` runs unchanged in tests on memory://)."""
        self.remember(key)

    def forget(self, scope: str) -> None:
        prefix = scope + "|"
        with self._lock:
            for key in [k for k in self._expiry if k.startswith(prefix)]:
                del self._expiry[key]
