"""Reading a topic without a consumer group: replay in time order, and the per-partition offsets
a start position stands for (used by replay and seek)."""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.kafka.errors import mapped_errors
from interchange.adapters.kafka.wire import position, start_millis, to_delivery
from interchange.adapters.message import Delivery, Position
from interchange.adapters.protocols import Start


def reader(config: dict[str, Any]) -> Consumer:
    """A consumer that joins no group's work and commits nothing."""
    return Consumer(
        {
            **config,
            "group.id": f"interchange-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )


def positions(
    consumer: Consumer, topic: str, at: Start, timeout: float, servers: str
) -> dict[int, tuple[int, int]]:
    """partition -> (first offset to read, high watermark) for ``at``."""
    with mapped_errors(servers, f"read the offsets of {topic!r}"):
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}
        found = {}
        for partition in metadata.partitions:
            where = TopicPartition(topic, partition)
            low, high = _watermarks(consumer, where, timeout)
            if at == "earliest":
                first = low
            elif at == "latest":
                first = high
            elif isinstance(at, datetime):
                stamp = start_millis(at)
                [hit] = consumer.offsets_for_times(
                    [TopicPartition(topic, partition, stamp)], timeout=timeout
                )
                first = hit.offset if hit.offset >= 0 else high
            elif isinstance(at, Position):
                first = max(low, min(at.offset(partition, low), high))
            else:
                first = max(low, min(int(at), high))
            found[partition] = (first, high)
    return found


_SETTLING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
"""What a topic answers while its leaders are being chosen."""


def _watermarks(consumer: Consumer, where: TopicPartition, timeout: float) -> tuple[int, int]:
    """The partition's low and high watermarks. A topic created a moment ago can answer "not
    leader" until its leader is known everywhere (seen in CI): retriable errors are tried
    again for up to ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            low, high = consumer.get_watermark_offsets(where, timeout=timeout)
            return int(low), int(high)
        except KafkaException as error:
            kafka_error = error.args[0]
            settling = kafka_error.retriable() or kafka_error.code() in _SETTLING
            if not settling or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)  # the cluster settling its leaders, not a wait for a result
            pause = min(pause * 2, 1.0)


def replay(
    config: dict[str, Any], topic: str, since: Start, until: datetime | None, timeout: float
) -> Iterator[Delivery]:
    """The records from ``since`` to the log's end as it was when replay began (or
    ``until``), merged across partitions in time order; per partition in offset order."""
    consumer = reader(config)
    try:
        window = positions(consumer, topic, since, timeout, str(config["bootstrap.servers"]))
        ranges = {p: r for p, r in window.items() if r[0] < r[1]}
        if not ranges:
            return
        consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in ranges.items()])
        # the cursor names every partition, those with nothing to read too (at the window's
        # start): resuming from a record's position must not read them from their oldest record
        start = {partition: first for partition, (first, _) in window.items()}
        yield from _merged(consumer, ranges, start, until, timeout)
    finally:
        consumer.close()


def _merged(
    consumer: Consumer,
    ranges: dict[int, tuple[int, int]],
    start: dict[int, int],
    until: datetime | None,
    idle_timeout: float,
) -> Iterator[Delivery]:
    """Yield records of ``ranges`` in (timestamp, partition, offset) order, holding at most one
    unyielded record per partition once each has one. Each carries the replay's cursor from
    ``start`` (every partition of the window, read or not)."""
    limit = int(until.timestamp() * 1000) if until is not None else None
    unread = dict(start)
    """Per partition, the offset of its first record not yet yielded: the replay's cursor."""
    open_partitions = set(ranges)
    heads: list[tuple[int, int, int, Any]] = []  # (timestamp, partition, offset, record)
    waiting = set(open_partitions)  # partitions without a head in the heap
    last_progress = time.monotonic()
    while open_partitions or heads:
        while waiting and open_partitions:
            record = consumer.poll(0.5)
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
            if offset >= ranges[partition][1] - 1:
                open_partitions.discard(partition)
                consumer.pause([where])
            if limit is not None and stamp > limit:
                open_partitions.discard(partition)
                waiting.discard(partition)
                continue
            heapq.heappush(heads, (stamp, partition, offset, record))
            waiting.discard(partition)
        if not heads:
            return
        stamp, partition, offset, record = heapq.heappop(heads)
        unread[partition] = offset
        yield to_delivery(record, resume=Position.at(unread))
        unread[partition] = offset + 1
        if partition in open_partitions:
            waiting.add(partition)
