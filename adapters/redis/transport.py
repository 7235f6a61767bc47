"""The Redis transports: the protocol verbs on Streams (see the package's datasheet)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis

from interchange.adapters.errors import ConfigurationError, PublishRejected, RequestTimeout
from interchange.adapters.lifecycle import Consumers
from interchange.adapters.message import Delivery, DeliveryHandler, TransportMessage
from interchange.adapters.protocols import Start, Verdict
from interchange.adapters.redis import CAPABILITIES
from interchange.adapters.redis.consumer import READ_BLOCK, QueueReader
from interchange.adapters.redis.errors import mapped
from interchange.adapters.redis.log_reader import LogReader, PartitionedReader
from interchange.adapters.redis.options import client_url, impatient_client
from interchange.adapters.redis.partitions import Layout, by_partition
from interchange.adapters.redis.replay import replay
from interchange.adapters.redis.trimming import trim_stream
from interchange.adapters.redis.wire import (
    last_delivered_before,
    stage_appends,
    to_delivery,
    to_fields,
)

_REPLY_TTL_MS = 60_000
_EXCHANGE_SUFFIX = ":broadcast"


def exchange_stream(exchange: str) -> str:
    """The stream an exchange's broadcasts are appended to. Never the stream of the queue of
    the same name: by default a command's queue and its exchange are both named after the
    contract, and on one stream point-to-point consumers would read broadcasts (and delete
    them from under the broadcast groups) while every broadcast group read the sends."""
    return exchange + _EXCHANGE_SUFFIX


def probe(url: str, timeout: float = 5.0) -> str:
    """PING, then report the version and the durability the server is set to."""
    client = redis.Redis.from_url(
        client_url(url)[0],
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
    )
    try:
        with mapped(url, "answer a PING"):
            client.ping()
            info = client.info("server")
            aof = client.config_get("appendonly").get("appendonly", "?")
            fsync = client.config_get("appendfsync").get("appendfsync", "?")
    finally:
        client.close()
    durability = f"AOF fsync {fsync}" if aof == "yes" else "no AOF (snapshots only)"
    return f"Redis {info.get('redis_version', '?')}, {durability}"


class _RedisTransport:
    """What both Redis transports share: the client, consumer groups, appending."""

    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.url, self.options = client_url(url)
        # redis-py's replies are typed as sync/async unions; treat them as the values they are
        self.client: Any = redis.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15
        )
        self.publishing: Any = self.client  # appends; its own, impatient client once fail_fast
        # Consumers read with a client whose calls end within a second of their block: with the
        # 10 s timeout (and redis-py's retries) a read behind a black hole held a stop that long
        # and SIGTERM past its grace. A reader that fails backs off and reads again.
        self.reading: Any = impatient_client(self.url, READ_BLOCK + 1.0, connect_timeout=1.0)
        self.consumers = Consumers()
        self._groups: set[tuple[str, str]] = set()
        self._streams: dict[str, str] = {}
        """Broadcast group queue -> the exchange stream it reads (declared here)."""

    def _group(self, stream: str, group: str, start: str) -> None:
        """Create a consumer group unless it exists; an existing group keeps its position."""
        if (stream, group) in self._groups:
            return
        with mapped(self.url, f"create group {group!r} on {stream!r}"):
            try:
                self.client.xgroup_create(stream, group, id=start, mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
        self._groups.add((stream, group))

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        """Entries the group has not been given yet (XINFO GROUPS ``lag``) plus its pending."""
        wanted = group or channel  # a queue's own consumers read as the group named after it
        stream = self._streams.get(channel, channel)  # a broadcast group reads the exchange's
        with mapped(self.url, f"measure {channel!r}"):
            try:
                groups = self.client.xinfo_groups(stream)
            except redis.ResponseError:  # no such stream
                return {}
        for found in groups:
            name = found["name"].decode() if isinstance(found["name"], bytes) else found["name"]
            if name == wanted:
                return {"": int(found.get("lag") or 0) + int(found.get("pending") or 0)}
        return {}

    def fail_fast(self, within: float) -> None:
        """Appends get a client of their own that waits ``within`` at most and never retries
        (redis-py retries a timed-out command three times by default); consumers keep theirs."""
        self.publishing = impatient_client(self.url, within, connect_timeout=within)

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """The stream's entries in order (XRANGE); a taken one is deleted (XDEL)."""
        self.consumers.check_open()
        low, taken = "-", 0
        while True:
            with mapped(self.url, f"read {channel!r}"):
                entries = self.client.xrange(channel, min=low, max="+", count=500)
            for entry_id, fields in entries:
                verdict = decide(to_delivery(channel, entry_id, fields, channel=channel).message)
                if verdict == "stop":
                    return taken
                if verdict == "take":
                    with mapped(self.url, f"delete from {channel!r}"):
                        taken += int(self.client.xdel(channel, entry_id))
            if len(entries) < 500:
                return taken
            low = "(" + entries[-1][0].decode()

    def _append(self, stream: str, messages: list[TransportMessage], doing: str) -> None:
        self._append_split({stream: messages}, doing)

    def _append_split(self, split: dict[str, list[TransportMessage]], doing: str) -> None:
        """XADD every message in one round trip; returns once Redis answered for all."""
        with mapped(self.url, doing), self.publishing.pipeline(transaction=False) as pipe:
            for stream, messages in split.items():
                stage_appends(pipe, stream, messages)
            pipe.execute()

    def close(self) -> None:
        self.consumers.close()
        self.reading.close()
        self.client.close()
        if self.publishing is not self.client:
            self.publishing.close()


class RedisCommandTransport(_RedisTransport):
    """Commands on Redis Streams: a stream per queue, a group per broadcast queue, request/reply
    over a reply list."""

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self.consumers.check_open()
        # a queue keeps what was sent before it had consumers; a broadcast group, like a
        # binding, only what is broadcast after it exists
        if exchange is None:
            if queue.endswith(_EXCHANGE_SUFFIX):  # (Bus routes are refused before this)
                raise ConfigurationError(
                    f"queue {queue!r}: on Redis a queue's name cannot end in "
                    f"{_EXCHANGE_SUFFIX!r}, that is the stream of an exchange's broadcasts"
                )
            self._group(queue, queue, "0")
        else:
            self._group(exchange_stream(exchange), queue, "$")
            self._streams[queue] = exchange_stream(exchange)

    def send(self, queue: str, message: TransportMessage) -> None:
        self.send_many(queue, [message])

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        self.declare(queue)
        self._append(queue, messages, f"send to {queue!r}")

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        stream = exchange_stream(exchange)
        with mapped(self.url, f"broadcast to {exchange!r}"):
            groups = self.client.xinfo_groups(stream) if self.client.exists(stream) else []
            if not groups:
                raise PublishRejected(f"no queue is bound to exchange {exchange!r}: unroutable")
            self.publishing.xadd(stream, to_fields(message))

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int | None = None,
    ) -> QueueReader:
        self.declare(queue, exchange=exchange)
        reader = QueueReader(
            self.reading,
            queue if exchange is None else exchange_stream(exchange),
            queue,
            handler,
            queue,
            self.options.claim_idle,
            f"redis-consume-{queue}",
            delete_acked=exchange is None,
        )
        return self.consumers.add(reader)

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self.consumers.check_open()
        inbox = f"interchange:reply:{uuid.uuid4().hex}"
        alive = f"{inbox}:waiting"
        with mapped(self.url, f"request on {queue!r}"):
            self.client.set(alive, b"1", px=int(timeout * 1000) + 1000)
            self.send(queue, replace(message, reply_to=inbox))
            try:
                answer = self.client.blpop([inbox], timeout=timeout)
            finally:
                self.client.delete(alive, inbox)
        if answer is None:
            raise RequestTimeout(f"no reply on {queue!r} within {timeout}s")
        fields = json.loads(answer[1])
        return TransportMessage(fields["id"], bytes.fromhex(fields["body"]), fields["headers"])

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        payload = json.dumps(
            {"id": message.id, "body": message.body.hex(), "headers": dict(message.headers)}
        )
        with mapped(self.url, "reply"):
            if not self.client.exists(f"{reply_to}:waiting"):
                raise PublishRejected(f"requester {reply_to!r} is gone (timed out or closed)")
            with self.client.pipeline(transaction=True) as pipe:
                pipe.rpush(reply_to, payload)
                pipe.pexpire(reply_to, _REPLY_TTL_MS)
                pipe.execute()


class RedisEventTransport(_RedisTransport):
    """Events on Redis Streams: a stream per topic partition (partitions.py), a consumer group
    per group, XRANGE replay, trimming only on request and never past what a group needs."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._partitions = Layout(self.client, self.url, self.options.partitions).streams

    def publish(self, topic: str, message: TransportMessage) -> None:
        self.publish_many(topic, [message])

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        self.consumers.check_open()
        split = by_partition(self._partitions(topic), messages)
        self._append_split(split, f"publish to {topic!r}")
        if self.options.maxlen is not None or self.options.retention_ms is not None:
            self.trim(topic)

    def trim(self, topic: str) -> int:
        """Apply ``maxlen`` / ``retention_ms`` to each partition, but never past the first
        entry a group still needs (trimming.py). Returns how many entries were deleted."""
        with mapped(self.url, f"trim {topic!r}"):
            return sum(
                trim_stream(self.client, stream, self.options.retention_ms, self.options.maxlen)
                for stream in self._partitions(topic)
            )

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        if self.options.partitions == 1:
            return super().backlog(channel, group)
        found: dict[str, int] = {}
        for partition, stream in enumerate(self._partitions(channel)):
            for count in super().backlog(stream, group).values():
                found[str(partition)] = count
        return found

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
        workers: int = 1,
    ) -> LogReader | PartitionedReader:
        self.consumers.check_open()
        for partition, stream in enumerate(self._partitions(topic)):
            self._group(stream, group, last_delivered_before(start, partition))
        name, claim_idle = f"redis-subscribe-{topic}-{group}", self.options.claim_idle
        lease_ttl, partitions = self.options.lease_ttl, self.options.partitions
        if partitions > 1:
            return self.consumers.add(
                PartitionedReader(
                    self.reading,
                    topic,
                    group,
                    handler,
                    claim_idle,
                    name,
                    partitions=partitions,
                    workers=workers,
                    lease_ttl=lease_ttl,
                )
            )
        reader = LogReader(
            self.reading,
            topic,
            group,
            handler,
            topic,
            claim_idle,
            name,
            workers=workers,
            lease_ttl=lease_ttl,
        )
        return self.consumers.add(reader)

    def replay(
        self, topic: str, *, since: Start = "earliest", until: datetime | None = None
    ) -> Iterator[Delivery]:
        """Every partition's entries, merged in id (time) order (replay.py)."""
        self.consumers.check_open()
        yield from replay(self.client, self.url, topic, self._partitions(topic), since, until)

    def seek(self, topic: str, group: str, to: Start) -> None:
        self.consumers.check_open()
        for partition, stream in enumerate(self._partitions(topic)):
            position = last_delivered_before(to, partition)  # a Position names each its own
            self._group(stream, group, position)
            with mapped(self.url, f"seek group {group!r} on {stream!r}"):
                self.client.xgroup_setid(stream, group, position)
