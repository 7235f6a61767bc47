"""Going through a dead-letter topic as an operator (``interchange dlq``): every record not yet
settled, per partition in offset order, read by a consumer that joins no group's work; what the
operator settles is committed by a group of its own, as a floor and ranges above it
(adapters/settled.py), since a log cannot delete a record in the middle."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from confluent_kafka import Consumer, TopicPartition

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.kafka.errors import mapped_errors
from interchange.adapters.kafka.replay import positions, reader
from interchange.adapters.kafka.wire import to_delivery
from interchange.adapters.message import TransportMessage
from interchange.adapters.protocols import Verdict
from interchange.adapters.settled import OPERATOR_GROUP, Settled


def sweep(
    config: dict[str, Any],
    channel: str,
    decide: Callable[[TransportMessage], Verdict],
    timeout: float,
) -> int:
    servers = str(config["bootstrap.servers"])
    consumer = reader(config)
    cursor = Consumer({**config, "group.id": OPERATOR_GROUP, "enable.auto.commit": False})
    settled: dict[int, Settled] = {}
    taken = 0
    try:
        ranges = positions(consumer, channel, "earliest", timeout, servers)
        with mapped_errors(servers, f"read what was settled on {channel!r}"):
            committed = cursor.committed(
                [TopicPartition(channel, p) for p in sorted(ranges)], timeout=timeout
            )
        for found in committed:
            low, _ = ranges[found.partition]
            floor = found.offset if found.offset >= 0 else low
            settled[found.partition] = Settled.decode(max(floor, low), found.metadata)
        for partition, (_, high) in sorted(ranges.items()):
            done = settled[partition]
            for message, offset in _records(
                consumer, channel, partition, done.floor, high, timeout
            ):
                if offset in done:
                    continue
                verdict = decide(message)
                if verdict == "stop":
                    return taken
                if verdict == "take":
                    done.settle(offset)
                    taken += 1
        return taken
    finally:  # what was settled stays settled, even when ``decide`` raised
        try:
            if settled:
                marks = [
                    TopicPartition(channel, p, s.floor, metadata=s.encode())
                    for p, s in settled.items()
                ]
                with mapped_errors(servers, f"commit what was settled on {channel!r}"):
                    cursor.commit(offsets=marks, asynchronous=False)
        finally:
            consumer.close()
            cursor.close()


def _records(
    consumer: Consumer, channel: str, partition: int, first: int, high: int, timeout: float
) -> Iterator[tuple[TransportMessage, int]]:
    """(message, offset) of the partition's records from ``first`` up to ``high``."""
    if first >= high:
        return
    consumer.assign([TopicPartition(channel, partition, first)])
    last_progress = time.monotonic()
    while True:
        records = consumer.consume(500, 0.5)
        if not records and time.monotonic() - last_progress > timeout:
            raise BackendUnavailable(f"reading {channel!r} stalled: nothing for {timeout}s")
        for record in records:
            if record.error() is not None:
                continue
            last_progress = time.monotonic()
            offset = cast(int, record.offset())
            yield to_delivery(record).message, offset
            if offset >= high - 1:
                return
