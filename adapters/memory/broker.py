"""The in-process broker behind memory:// : queues, bindings, reply inboxes and topic logs."""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

from interchange.adapters.message import Position, TransportMessage
from interchange.adapters.protocols import Start


@dataclass(eq=False)
class Entry:
    message: TransportMessage
    deliveries: int = 0
    not_before: float = 0.0


class Queue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ready: deque[Entry] = deque()
        self.unacked: set[Entry] = set()
        self.cond = threading.Condition()

    def put(self, entry: Entry, *, front: bool = False) -> None:
        with self.cond:
            (self.ready.appendleft if front else self.ready.append)(entry)
            self.cond.notify()

    def take(self, wait: float) -> Entry | None:
        """The first entry that is due, held as unacknowledged until settle()."""
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                now = time.monotonic()
                for entry in self.ready:
                    if entry.not_before <= now:
                        self.ready.remove(entry)
                        entry.deliveries += 1
                        self.unacked.add(entry)
                        return entry
                if now >= deadline:
                    return None
                self.cond.wait(deadline - now)

    def settle(self, entry: Entry) -> bool:
        """Drop an entry from the unacked set; False if a restart already requeued it."""
        with self.cond:
            if entry not in self.unacked:
                return False
            self.unacked.remove(entry)
            return True

    def requeue_unacked(self) -> None:
        with self.cond:
            for entry in self.unacked:
                entry.not_before = 0.0
                self.ready.appendleft(entry)
            self.unacked.clear()
            self.cond.notify_all()


@dataclass
class Group:
    offset: int
    metadata: str = ""
    """What the group committed beside its offset (Kafka lets a commit carry a string)."""
    turn: threading.Lock = field(default_factory=threading.Lock)


class Topic:
    """One partition: records in publish order, each stamped with a strictly increasing time."""

    def __init__(self) -> None:
        self.records: list[tuple[float, TransportMessage]] = []
        self.times: list[float] = []
        self.groups: dict[str, Group] = {}
        self.cond = threading.Condition()

    def append(self, message: TransportMessage) -> None:
        with self.cond:
            # strictly increasing stamps keep time-based replay unambiguous
            stamp = max(time.time(), self.times[-1] + 1e-6 if self.times else 0.0)
            self.records.append((stamp, message))
            self.times.append(stamp)
            self.cond.notify_all()

    def position(self, start: Start) -> int:
        """The offset of the first record at ``start``."""
        with self.cond:
            if start == "earliest":
                return 0
            if start == "latest":
                return len(self.records)
            if isinstance(start, datetime):
                return bisect.bisect_left(self.times, start.timestamp())
            if isinstance(start, Position):
                start = start.offset(0, 0)
            if isinstance(start, int):
                return max(0, min(start, len(self.records)))
        raise ValueError(f"unknown start position {start!r}")

    def join(self, group: str, start: Start) -> Group:
        """The group's state; a new group starts at ``start``."""
        with self.cond:
            if group not in self.groups:
                self.groups[group] = Group(offset=self.position(start))
            return self.groups[group]


class MemoryBroker:
    """One in-process broker. Obtain it with ``MemoryBroker.named(name)``."""

    _brokers: ClassVar[dict[str, MemoryBroker]] = {}
    _brokers_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, Queue] = {}
        self._bindings: dict[str, set[str]] = {}
        self._inboxes: dict[str, Queue] = {}
        self._topics: dict[str, Topic] = {}
        self.epoch = 0

    @classmethod
    def named(cls, name: str) -> MemoryBroker:
        with cls._brokers_lock:
            return cls._brokers.setdefault(name, cls())

    @classmethod
    def for_url(cls, url: str) -> MemoryBroker:
        return cls.named(urlsplit(url).netloc or "default")

    def queue(self, name: str) -> Queue:
        with self._lock:
            return self._queues.setdefault(name, Queue(name))

    def bind(self, queue: str, exchange: str) -> None:
        self.queue(queue)
        with self._lock:
            self._bindings.setdefault(exchange, set()).add(queue)

    def bound(self, exchange: str) -> list[Queue]:
        with self._lock:
            return [self._queues[q] for q in sorted(self._bindings.get(exchange, ()))]

    def topic(self, name: str) -> Topic:
        with self._lock:
            return self._topics.setdefault(name, Topic())

    def open_inbox(self, address: str) -> Queue:
        """A requester's reply inbox, until close_inbox()."""
        with self._lock:
            self._inboxes[address] = inbox = Queue(address)
        return inbox

    def inbox(self, address: str) -> Queue | None:
        with self._lock:
            return self._inboxes.get(address)

    def close_inbox(self, address: str) -> None:
        with self._lock:
            self._inboxes.pop(address, None)

    def restart(self) -> None:
        """Simulate a broker restart: every unacknowledged delivery is requeued."""
        with self._lock:
            self.epoch += 1
            queues = list(self._queues.values())
        for q in queues:
            q.requeue_unacked()
