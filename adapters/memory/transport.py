"""The memory backend's transports: the protocol verbs, on the in-process broker."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from interchange.adapters.lifecycle import Consumers, ConsumerThread
from interchange.adapters.memory import CAPABILITIES, errors, wire
from interchange.adapters.memory.broker import Entry, MemoryBroker
from interchange.adapters.memory.consumer import KeyedMember, group_member, queue_consumer
from interchange.adapters.memory.options import MemoryOptions
from interchange.adapters.message import Delivery, DeliveryHandler, TransportMessage
from interchange.adapters.protocols import Start, Subscription, Verdict
from interchange.adapters.settled import OPERATOR_GROUP, Settled
from interchange.adapters.urls import split_options


def probe(url: str, timeout: float = 5.0) -> str:
    return "in-process broker"


class _MemoryTransport:
    capabilities = CAPABILITIES

    def __init__(self, url: str = "memory://") -> None:
        split_options(url, MemoryOptions)
        self.broker = MemoryBroker.for_url(url)
        self.consumers = Consumers()

    def close(self) -> None:
        self.consumers.close()


class MemoryCommandTransport(_MemoryTransport):
    """Commands on the in-process broker: queues, fanout exchanges, request/reply inboxes."""

    def send(self, queue: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        self.broker.queue(queue).put(Entry(message))

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        for message in messages:
            self.send(queue, message)

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        queues = self.broker.bound(exchange)
        if not queues:
            raise errors.unroutable(exchange)
        for q in queues:
            q.put(Entry(message))

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self.consumers.check_open()
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
        prefetch: int | None = None,
    ) -> ConsumerThread:
        self.declare(queue, exchange=exchange)
        source, dead_letters = self.broker.queue(queue), self.broker.queue(f"{queue}.dlq")
        return self.consumers.add(queue_consumer(queue, source, dead_letters, handler))

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """The queue's ready messages in order; one a consumer holds is not shown."""
        self.consumers.check_open()
        queue = self.broker.queue(channel)
        with queue.cond:
            entries = list(queue.ready)
        taken = 0
        for entry in entries:
            verdict = decide(entry.message)
            if verdict == "stop":
                break
            if verdict == "take":
                with queue.cond:
                    if entry in queue.ready:  # not taken by a consumer meanwhile
                        queue.ready.remove(entry)
                        taken += 1
        return taken

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self.consumers.check_open()
        address = f"reply.{uuid.uuid4().hex}"
        inbox = self.broker.open_inbox(address)
        try:
            self.send(queue, replace(message, reply_to=address))
            entry = inbox.take(timeout)
        finally:
            self.broker.close_inbox(address)
        if entry is None:
            raise errors.no_reply(queue, timeout)
        return entry.message

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        inbox = self.broker.inbox(reply_to)
        if inbox is None:
            raise errors.requester_gone(reply_to)
        inbox.put(Entry(message))


class MemoryEventTransport(_MemoryTransport):
    """Events on the in-process broker: one-partition logs, groups, replay and seek."""

    def publish(self, topic: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        self.broker.topic(topic).append(message)

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
        workers: int = 1,
    ) -> Subscription:
        self.consumers.check_open()
        log = self.broker.topic(topic)
        member = log.join(group, start)
        dead_letters = self.broker.topic(f"{topic}.dlq")
        if workers > 1:
            epoch = functools.partial(getattr, self.broker, "epoch")
            return self.consumers.add(
                KeyedMember(topic, log, group, member, handler, dead_letters.append, epoch, workers)
            )
        return self.consumers.add(
            group_member(
                topic,
                log,
                group,
                member,
                handler,
                dead_letters.append,
                lambda: self.broker.epoch,
            )
        )

    def replay(
        self,
        topic: str,
        *,
        since: Start = "earliest",
        until: datetime | None = None,
    ) -> Iterator[Delivery]:
        self.consumers.check_open()
        log = self.broker.topic(topic)
        first = log.position(since)
        with log.cond:
            records = log.records[first:]
        limit = until.timestamp() if until is not None else None
        for offset, (stamp, message) in enumerate(records, start=first):
            if limit is not None and stamp > limit:
                return
            yield wire.logged(message, topic, offset, stamp)

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """The log's records not yet settled, in order (adapters/settled.py)."""
        self.consumers.check_open()
        log = self.broker.topic(channel)
        cursor = log.join(OPERATOR_GROUP, "earliest")
        with log.cond:
            settled = Settled.decode(cursor.offset, cursor.metadata)
            records = log.records[settled.floor :]
        taken = 0
        try:
            for offset, (_, message) in enumerate(records, start=settled.floor):
                if offset in settled:
                    continue
                verdict = decide(message)
                if verdict == "stop":
                    break
                if verdict == "take":
                    settled.settle(offset)
                    taken += 1
        finally:  # what was settled stays settled, even when ``decide`` raised
            with log.cond:
                cursor.offset, cursor.metadata = settled.floor, settled.encode()
        return taken

    def seek(self, topic: str, group: str, to: Start) -> None:
        self.consumers.check_open()
        log = self.broker.topic(topic)
        position = log.position(to)
        member = log.join(group, to)
        with log.cond:
            member.offset = position
