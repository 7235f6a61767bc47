"""Idempotency-Key: a retried POST with the same key gets the first answer again, the same
message id, and sends nothing twice.

Keys are scoped per caller (API key, webhook source). The same key with another body is refused;
a key whose first request is still running answers 409; a first attempt that did not end in a
2xx (503: nothing was stored) does not use the key up. The message id is derived from the
scope and the key, so even gateways in other processes give a retry the same id and the
consumers dedupe it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal


@dataclass
class Answer:
    status: int
    body: bytes
    media_type: str


@dataclass
class _Entry:
    fingerprint: str
    answer: Answer | None  # None while the first request runs
    expires: float


Outcome = Literal["new", "replay", "other-body", "in-flight"]


def message_id(scope: str, key: str) -> str:
    return "idem-" + hashlib.sha256(f"{scope}|{key}".encode()).hexdigest()[:32]


class IdempotencyStore:
    """In this process, bounded and expiring (``ttl`` seconds, 24 h by default)."""

    def __init__(self, ttl: float = 86_400.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, scope: str, key: str, fingerprint: str) -> tuple[Outcome, Answer | None]:
        now = time.monotonic()
        with self._lock:
            while self._entries and (
                len(self._entries) >= self.max_entries
                or next(iter(self._entries.values())).expires <= now
            ):
                self._entries.popitem(last=False)
            entry = self._entries.get((scope, key))
            if entry is None:
                self._entries[(scope, key)] = _Entry(fingerprint, None, now + self.ttl)
                return "new", None
            if entry.fingerprint != fingerprint:
                return "other-body", None
            if entry.answer is None:
                return "in-flight", None
            return "replay", entry.answer

    def finish(self, scope: str, key: str, answer: Answer) -> None:
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None:
                entry.answer = answer

    def abandon(self, scope: str, key: str) -> None:
        """The first attempt did not succeed: the key may be used again."""
        with self._lock:
            self._entries.pop((scope, key), None)
