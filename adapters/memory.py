"""In-memory backend: the embedded default for the demo and unit tests.

Features
    commands: point-to-point queues, broadcast exchanges, request/response, dead letters.
    events: an append-only log per topic, consumer groups with committed offsets, replay from the
    start, an offset or a time, seek.
    ``restart()`` simulates a broker restart: unacknowledged deliveries go back to their queue
    marked redelivered, and acks or commits for them are ignored, exactly as a real broker
    would after the consumers' connections dropped.
Connection string
    ``memory://`` (the process-wide default broker) or ``memory://<name>`` (a separate broker;
    every transport opened on the same name shares it, like services on one real broker).
Options
    none.
Guarantees
    At least once, in process only: nothing survives the process. A topic is one partition, so
    each group sees the whole topic in publish order, one member at a time.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

from interchange.adapters._threads import ConsumerThread, run_handler
from interchange.adapters.capabilities import Capabilities
from interchange.adapters.errors import BackendUnavailable, PublishRejected, RequestTimeout
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Retry,
    TransportMessage,
    dead_letter_headers,
)
from interchange.adapters.protocols import Start

CAPABILITIES = Capabilities(
    header_prefix="ce_",
    persistent=False,
    ordered_log=True,
    consumer_groups=True,
    replay=True,
    request_reply=True,
    survives_restart=True,
)
_POLL = 0.05


@dataclass(eq=False)
class _Entry:
    message: TransportMessage
    deliveries: int = 0
    not_before: float = 0.0


class _Queue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ready: deque[_Entry] = deque()
        self.unacked: set[_Entry] = set()
        self.cond = threading.Condition()

    def put(self, entry: _Entry, *, front: bool = False) -> None:
        with self.cond:
            (self.ready.appendleft if front else self.ready.append)(entry)
            self.cond.notify()

    def take(self, wait: float) -> _Entry | None:
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

    def settle(self, entry: _Entry) -> bool:
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
class _Group:
    offset: int
    turn: threading.Lock = field(default_factory=threading.Lock)


class _Topic:
    def __init__(self) -> None:
        self.records: list[tuple[float, TransportMessage]] = []
        self.times: list[float] = []
        self.groups: dict[str, _Group] = {}
        self.cond = threading.Condition()

    def position(self, start: Start) -> int:
        with self.cond:
            if start == "earliest":
                return 0
            if start == "latest":
                return len(self.records)
            if isinstance(start, datetime):
                return bisect.bisect_left(self.times, start.timestamp())
            if isinstance(start, int):
                return max(0, min(start, len(self.records)))
        raise ValueError(f"unknown start position {start!r}")


class MemoryBroker:
    """One in-process broker. Obtain it with ``MemoryBroker.named(name)``."""

    _brokers: ClassVar[dict[str, MemoryBroker]] = {}
    _brokers_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self._bindings: dict[str, set[str]] = {}
        self._replies: dict[str, _Queue] = {}
        self._topics: dict[str, _Topic] = {}
        self.epoch = 0

    @classmethod
    def named(cls, name: str) -> MemoryBroker:
        with cls._brokers_lock:
            return cls._brokers.setdefault(name, cls())

    @classmethod
    def for_url(cls, url: str) -> MemoryBroker:
        return cls.named(urlsplit(url).netloc or "default")

    def queue(self, name: str) -> _Queue:
        with self._lock:
            return self._queues.setdefault(name, _Queue(name))

    def bind(self, queue: str, exchange: str) -> None:
        self.queue(queue)
        with self._lock:
            self._bindings.setdefault(exchange, set()).add(queue)

    def bound(self, exchange: str) -> list[_Queue]:
        with self._lock:
            return [self._queues[q] for q in sorted(self._bindings.get(exchange, ()))]

    def topic(self, name: str) -> _Topic:
        with self._lock:
            return self._topics.setdefault(name, _Topic())

    def restart(self) -> None:
        """Simulate a broker restart: every unacknowledged delivery is requeued."""
        with self._lock:
            self.epoch += 1
            queues = list(self._queues.values())
        for q in queues:
            q.requeue_unacked()


class _Closable:
    def __init__(self) -> None:
        self._consumers: list[ConsumerThread] = []
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("transport is closed")

    def _started(self, consumer: ConsumerThread) -> ConsumerThread:
        self._consumers.append(consumer)
        return consumer

    def close(self) -> None:
        self._closed = True
        for consumer in self._consumers:
            consumer.stopping.set()
        for consumer in self._consumers:
            consumer.close()


class MemoryCommandTransport(_Closable):
    capabilities = CAPABILITIES

    def __init__(self, url: str = "memory://") -> None:
        super().__init__()
        self.broker = MemoryBroker.for_url(url)

    def send(self, queue: str, message: TransportMessage) -> None:
        self._check_open()
        self.broker.queue(queue).put(_Entry(message))

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        for message in messages:
            self.send(queue, message)

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self._check_open()
        queues = self.broker.bound(exchange)
        if not queues:
            raise PublishRejected(f"no queue is bound to exchange {exchange!r}: unroutable")
        for q in queues:
            q.put(_Entry(message))

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self._check_open()
        if exchange is None:
            self.broker.queue(queue)
        else:
            self.broker.bind(queue, exchange)

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int = 1,
    ) -> ConsumerThread:
        self.declare(queue, exchange=exchange)
        source = self.broker.queue(queue)

        def step(stop: threading.Event) -> None:
            entry = source.take(_POLL)
            if entry is None:
                return
            delivery = Delivery(
                entry.message, queue, attempt=entry.deliveries, redelivered=entry.deliveries > 1
            )
            outcome = run_handler(handler, delivery)
            if not source.settle(entry):
                return  # the broker restarted meanwhile and already requeued it
            if isinstance(outcome, Retry):
                entry.not_before = time.monotonic() + outcome.delay
                source.put(entry)
            elif isinstance(outcome, DeadLetter):
                dead = replace(entry.message, headers=dead_letter_headers(delivery, outcome))
                self.broker.queue(f"{queue}.dlq").put(_Entry(dead))

        return self._started(ConsumerThread(f"memory-consume-{queue}", step))

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self._check_open()
        reply_to = f"reply.{uuid.uuid4().hex}"
        inbox = _Queue(reply_to)
        with self.broker._lock:
            self.broker._replies[reply_to] = inbox
        try:
            self.send(queue, replace(message, reply_to=reply_to))
            entry = inbox.take(timeout)
        finally:
            with self.broker._lock:
                del self.broker._replies[reply_to]
        if entry is None:
            raise RequestTimeout(f"no reply on {queue!r} within {timeout}s")
        return entry.message

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self._check_open()
        with self.broker._lock:
            inbox = self.broker._replies.get(reply_to)
        if inbox is None:
            raise PublishRejected(f"requester {reply_to!r} is gone (timed out or closed)")
        inbox.put(_Entry(message))


class MemoryEventTransport(_Closable):
    capabilities = CAPABILITIES

    def __init__(self, url: str = "memory://") -> None:
        super().__init__()
        self.broker = MemoryBroker.for_url(url)

    def publish(self, topic: str, message: TransportMessage) -> None:
        self._check_open()
        log = self.broker.topic(topic)
        with log.cond:
            # strictly increasing stamps keep time-based replay unambiguous
            stamp = max(time.time(), log.times[-1] + 1e-6 if log.times else 0.0)
            log.records.append((stamp, message))
            log.times.append(stamp)
            log.cond.notify_all()

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        for message in messages:
            self.publish(topic, message)

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
    ) -> ConsumerThread:
        self._check_open()
        log = self.broker.topic(topic)
        with log.cond:
            if group not in log.groups:
                log.groups[group] = _Group(offset=log.position(start))
            member = log.groups[group]

        def step(stop: threading.Event) -> None:
            # One member of a group at a time holds the partition: order within the group.
            if not member.turn.acquire(timeout=_POLL):
                return
            try:
                self._deliver_next(topic, log, member, handler, stop)
            finally:
                member.turn.release()

        return self._started(ConsumerThread(f"memory-subscribe-{topic}-{group}", step))

    def _deliver_next(
        self,
        topic: str,
        log: _Topic,
        member: _Group,
        handler: DeliveryHandler,
        stop: threading.Event,
    ) -> None:
        with log.cond:
            offset = member.offset
            if offset >= len(log.records) and not log.cond.wait(_POLL):
                return
            if offset >= len(log.records) or offset != member.offset:
                return
            stamp, message = log.records[offset]
        for attempt in itertools.count(1):
            epoch = self.broker.epoch
            delivery = Delivery(
                message,
                topic,
                attempt=attempt,
                redelivered=attempt > 1,
                offset=offset,
                timestamp=stamp,
            )
            outcome = run_handler(handler, delivery)
            if epoch != self.broker.epoch:
                return  # restarted meanwhile: no commit, the record comes again
            if isinstance(outcome, Retry):
                if stop.wait(outcome.delay):
                    return  # closing: leave the record uncommitted for the next member
                continue
            if isinstance(outcome, DeadLetter):
                dead = replace(message, headers=dead_letter_headers(delivery, outcome))
                self.publish(f"{topic}.dlq", dead)
            assert isinstance(outcome, Ack | DeadLetter)
            with log.cond:
                member.offset = offset + 1
            return

    def replay(
        self,
        topic: str,
        *,
        since: Start = "earliest",
        until: datetime | None = None,
    ) -> Iterator[Delivery]:
        self._check_open()
        log = self.broker.topic(topic)
        first = log.position(since)
        with log.cond:
            records = log.records[first:]
        limit = until.timestamp() if until is not None else None
        for offset, (stamp, message) in enumerate(records, start=first):
            if limit is not None and stamp > limit:
                return
            yield Delivery(message, topic, offset=offset, timestamp=stamp)

    def seek(self, topic: str, group: str, to: Start) -> None:
        self._check_open()
        log = self.broker.topic(topic)
        position = log.position(to)
        with log.cond:
            if group in log.groups:
                log.groups[group].offset = position
            else:
                log.groups[group] = _Group(offset=position)
