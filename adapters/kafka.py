"""Apache Kafka through confluent-kafka (librdkafka): the home of events.

Features
    ``publish`` / ``publish_many`` to a keyed, append-only log: the idempotent producer
    (``enable.idempotence``, hence ``acks=all`` and ordered retries), and a call returns only
    when every delivery report came back without error; topics created on first use through
    the AdminClient with the configured partitions, replication and retention (existing topics
    are left alone; ``min.insync.replicas=2`` when replicated three ways);
    ``subscribe``: consumer groups, offsets stored only after the handler, committed on revoke
    and on close; start at ``earliest``, ``latest``, an offset (each partition) or a time;
    ``replay`` without a group and without moving any group's offset, in time order;
    ``seek`` a group (with no running members) to a new position;
    dead letters to ``<topic>.dlq`` with the reason in headers; the partition moves on.
Connection string
    ``kafka://host:9092[,host2:9092][?option=value...]``.
Options (URL query)
    ``partitions`` (3), ``replication_factor`` (min(3, brokers)), ``retention_ms`` (broker's),
    ``publish_timeout`` (30 s), ``queued_kbytes`` (8192: a member's prefetch bound). Any option
    containing a dot is handed to librdkafka as is (``security.protocol``, ``sasl.mechanism``,
    ``sasl.username``, ``sasl.password``, ``ssl.ca.location``...) and never logged.
Guarantees
    At least once. A record that timed out in flight may or may not be in the log: it is
    reported as BackendUnavailable, and a retry may duplicate it (consumers dedupe by id).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from interchange.adapters._kafka_group import (
    ID_HEADER,
    GroupMember,
    position,
    start_millis,
    to_delivery,
)
from interchange.adapters.capabilities import Capabilities
from interchange.adapters.errors import BackendUnavailable, PublishRejected
from interchange.adapters.message import Delivery, TransportMessage
from interchange.adapters.protocols import Start

try:
    from confluent_kafka import (
        Consumer,
        ConsumerGroupTopicPartitions,
        KafkaError,
        KafkaException,
        Producer,
        TopicPartition,
    )
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the kafka:// backend needs confluent-kafka: pip install 'interchange-bus[kafka]'"
    ) from missing

log = logging.getLogger("interchange.adapters.kafka")

CAPABILITIES = Capabilities(
    header_prefix="ce_",
    persistent=True,
    ordered_log=True,
    consumer_groups=True,
    replay=True,
    request_reply=False,
    survives_restart=True,
)
_OURS = {"partitions", "replication_factor", "retention_ms", "publish_timeout", "queued_kbytes"}
# Errors after which the broker may simply not have been reachable in time.
_UNREACHED = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.LEADER_NOT_AVAILABLE,
}


def bootstrap_servers(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def client_config(url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(librdkafka settings, our options) from a kafka:// URL."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers(url)}
    ours: dict[str, str] = {}
    for key, value in parse_qsl(urlsplit(url).query):
        if key in _OURS:
            ours[key] = value
        elif "." in key:
            config[key] = value
        else:
            raise ValueError(f"unknown kafka:// option {key!r}; ours are {sorted(_OURS)}")
    return config, ours


def probe(url: str, timeout: float = 5.0) -> str:
    """Ask the cluster for its metadata; return how many brokers answered."""
    config, _ = client_config(url)
    admin = AdminClient(
        {**config, "socket.connection.setup.timeout.ms": int(timeout * 1000), "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise BackendUnavailable(f"Kafka at {config['bootstrap.servers']}: {error}") from error
    brokers = len(metadata.brokers)
    return f"Kafka cluster {metadata.cluster_id}, {brokers} broker{'s' if brokers != 1 else ''}"


class KafkaEventTransport:
    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.config, ours = client_config(url)
        self.servers = self.config["bootstrap.servers"]
        self.partitions = int(ours.get("partitions", 3))
        self.replication = int(ours["replication_factor"]) if "replication_factor" in ours else None
        self.retention_ms = ours.get("retention_ms")
        self.publish_timeout = float(ours.get("publish_timeout", 30))
        self.consumer_config = {
            **self.config,
            "queued.max.messages.kbytes": int(ours.get("queued_kbytes", 8192)),
        }
        self.producer = Producer(
            {
                # our defaults first: options given in the URL override them
                "linger.ms": 5,
                "delivery.timeout.ms": int(self.publish_timeout * 1000),
                **self.config,
                # never overridable: what "published" means here
                "enable.idempotence": True,
                "acks": "all",
            }
        )
        self.admin = AdminClient(self.config)
        self._topics: set[str] = set()
        self._members: list[GroupMember] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- topics ---------------------------------------------------------------------------

    def ensure_topic(self, topic: str) -> None:
        """Create the topic unless it exists; existing topics are left as they are."""
        if topic in self._topics:
            return
        replication = self.replication or min(3, len(self._metadata().brokers))
        settings = {"min.insync.replicas": "2"} if replication >= 3 else {}
        if self.retention_ms is not None:
            settings["retention.ms"] = self.retention_ms
        new = NewTopic(
            topic, num_partitions=self.partitions, replication_factor=replication, config=settings
        )
        try:
            self.admin.create_topics([new], operation_timeout=10)[topic].result(timeout=30)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise PublishRejected(
                    f"Kafka refused to create topic {topic!r}: {error}"
                ) from error
        self._topics.add(topic)

    def _metadata(self, topic: str | None = None) -> Any:
        try:
            return self.admin.list_topics(topic, timeout=10)
        except KafkaException as error:
            raise BackendUnavailable(f"Kafka at {self.servers}: {error}") from error

    # -- publishing -----------------------------------------------------------------------

    def publish(self, topic: str, message: TransportMessage) -> None:
        self.publish_many(topic, [message])

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        """Produce every message, then wait for every delivery report. Raises PublishRejected
        (``.failed`` ids) when the broker refused some, BackendUnavailable when some were not
        acknowledged in time — those may or may not be in the log."""
        self._check_open()
        self.ensure_topic(topic)
        errors: dict[str, Any] = {}
        pending = {m.id for m in messages}

        def report(message_id: str) -> Any:
            def on_delivery(error: Any, _record: Any) -> None:
                pending.discard(message_id)
                if error is not None:
                    errors[message_id] = error

            return on_delivery

        deadline = time.monotonic() + self.publish_timeout
        for message in messages:
            headers: list[tuple[str, str | bytes | None]] = [
                (k, v.encode()) for k, v in message.headers.items()
            ]
            if message.headers.get("ce_id") != message.id:
                headers.append((ID_HEADER, message.id.encode()))
            while True:
                try:
                    self.producer.produce(
                        topic,
                        value=message.body,
                        key=message.key,
                        headers=headers,
                        on_delivery=report(message.id),
                    )
                    break
                except BufferError:  # the local queue is full: backpressure, wait for room
                    if time.monotonic() > deadline:
                        raise BackendUnavailable(
                            f"Kafka at {self.servers} took no more messages in "
                            f"{self.publish_timeout}s (local queue full)"
                        ) from None
                    self.producer.poll(0.05)
        # flush() sends what lingers for batching at once and serves the delivery reports
        # (other threads' messages too: each caller still checks only its own).
        while pending and time.monotonic() < deadline:
            self.producer.flush(max(0.0, min(1.0, deadline - time.monotonic())))
        if pending:
            raise BackendUnavailable(
                f"{len(pending)} message(s) to {topic!r} not acknowledged by Kafka at "
                f"{self.servers} within {self.publish_timeout}s; they may or may not be stored"
            )
        if errors:
            unreached = all(e.code() in _UNREACHED for e in errors.values())
            kind = BackendUnavailable if unreached else PublishRejected
            raise kind(
                f"{len(errors)} of {len(messages)} message(s) to {topic!r} failed: "
                + "; ".join(f"{i}: {e.str()}" for i, e in list(errors.items())[:5]),
                failed=list(errors),
            )

    # -- consuming ------------------------------------------------------------------------

    def subscribe(
        self, topic: str, group: str, handler: Any, *, start: Start = "earliest"
    ) -> GroupMember:
        self._check_open()
        self.ensure_topic(topic)
        member = GroupMember(self.consumer_config, topic, group, handler, start, self._dead_letter)
        with self._lock:
            self._members.append(member)
        return member

    def _dead_letter(self, topic: str, message: TransportMessage) -> None:
        self.publish(topic, message)

    # -- reading the log again ------------------------------------------------------------

    def _positions(self, consumer: Consumer, topic: str, at: Start) -> dict[int, tuple[int, int]]:
        """partition -> (first offset to read, high watermark) for ``at``."""
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}
        positions = {}
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if at == "earliest":
                first = low
            elif at == "latest":
                first = high
            elif isinstance(at, datetime):
                stamp = start_millis(at)
                [found] = consumer.offsets_for_times(
                    [TopicPartition(topic, partition, stamp)], timeout=10
                )
                first = found.offset if found.offset >= 0 else high
            else:
                first = max(low, min(int(at), high))
            positions[partition] = (first, high)
        return positions

    def _reader(self) -> Consumer:
        return Consumer(
            {
                **self.consumer_config,
                "group.id": f"interchange-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )

    def replay(
        self, topic: str, *, since: Start = "earliest", until: datetime | None = None
    ) -> Iterator[Delivery]:
        """The records from ``since`` to the log's end as it was when replay began (or
        ``until``), merged across partitions in time order; per partition in offset order."""
        self._check_open()
        reader = self._reader()
        try:
            positions = {
                p: r for p, r in self._positions(reader, topic, since).items() if r[0] < r[1]
            }
            if not positions:
                return
            reader.assign([TopicPartition(topic, p, first) for p, (first, _) in positions.items()])
            yield from _merged(reader, positions, until, self.publish_timeout)
        finally:
            reader.close()

    def seek(self, topic: str, group: str, to: Start) -> None:
        """Set the group's committed offsets. Kafka allows it only while the group has no
        running member: stop its consumers first."""
        self._check_open()
        reader = self._reader()
        try:
            positions = self._positions(reader, topic, to)
        finally:
            reader.close()
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p, first) for p, (first, _) in positions.items()]
        )
        try:
            self.admin.alter_consumer_group_offsets([request])[group].result(timeout=30)
        except KafkaException as error:
            raise PublishRejected(f"cannot seek group {group!r} on {topic!r}: {error}") from error

    # -- lifecycle ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("transport is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            members, self._members = self._members, []
        for member in members:
            member.thread.stopping.set()
        for member in members:
            member.close()
        left = self.producer.flush(self.publish_timeout)  # deliver what was accepted
        if left:
            log.error("%d message(s) still unacknowledged when closing the Kafka producer", left)


def _merged(
    reader: Consumer,
    positions: dict[int, tuple[int, int]],
    until: datetime | None,
    idle_timeout: float,
) -> Iterator[Delivery]:
    """Yield records in (timestamp, partition, offset) order, holding at most one unyielded
    record per partition once each has one."""
    limit = int(until.timestamp() * 1000) if until is not None else None
    open_partitions = set(positions)
    heads: list[tuple[int, int, int, Any]] = []  # (timestamp, partition, offset, record)
    waiting = set(open_partitions)  # partitions without a head in the heap
    last_progress = time.monotonic()
    while open_partitions or heads:
        while waiting and open_partitions:
            record = reader.poll(0.5)
            if record is None:
                if time.monotonic() - last_progress > idle_timeout:
                    raise BackendUnavailable(f"replay stalled: nothing read for {idle_timeout}s")
                continue
            if record.error():
                continue
            last_progress = time.monotonic()
            where = position(record)
            partition, offset = where.partition, where.offset
            stamp = record.timestamp()[1]
            if offset >= positions[partition][1] - 1:
                open_partitions.discard(partition)
                reader.pause([where])
            if limit is not None and stamp > limit:
                open_partitions.discard(partition)
                waiting.discard(partition)
                continue
            heapq.heappush(heads, (stamp, partition, offset, record))
            waiting.discard(partition)
        if not heads:
            return
        stamp, partition, offset, record = heapq.heappop(heads)
        yield to_delivery(record)
        if partition in open_partitions:
            waiting.add(partition)
