"""Where a group member begins in a partition its group never committed: ``start`` turned
into a concrete offset and committed at once.

librdkafka's ``auto.offset.reset`` resolves "latest" again at every start for every partition
without a commit, and a group commits only partitions it read from: a ``start="latest"`` group
restarted after a clean stop skipped whatever was published meanwhile to the partitions it had
not read yet. Committing the resolved offset at assignment makes ``start`` apply once, as
promised: "used only by a group that never committed".
"""

from __future__ import annotations

import logging
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from interchange.adapters.kafka.wire import start_millis
from interchange.adapters.message import Position
from interchange.adapters.protocols import Start

log = logging.getLogger("interchange.adapters.kafka")

TIMEOUT = 10.0
"""Seconds for each metadata request made while assigning (it runs inside poll)."""


def begin_fresh(
    consumer: Consumer, group: str, partitions: list[TopicPartition], start: Start
) -> None:
    """Set each partition of ``partitions`` (all of one topic) that ``group`` never
    committed to the concrete offset ``start`` means now (latest: the high watermark; earliest:
    the low one; a time: the first record at or after it, else the high watermark), and
    commit those offsets synchronously before any record is handed out. Partitions with a
    commit are left as they are (they resume there)."""
    try:
        committed = consumer.committed(partitions, timeout=TIMEOUT)
        fresh = [tp for tp in committed if tp.offset < 0]
        if not fresh:
            return
        offsets = _resolve(consumer, fresh, start)
    except Exception as error:  # raised inside poll, it ended the consumer thread
        # a leader moving while the member is assigned (a broker lost mid-rebalance): read as
        # librdkafka's auto.offset.reset says (``start``), as before this module; only a
        # restart before this member commits could then apply ``start`` again
        topic = partitions[0].topic if partitions else "?"
        log.warning("%s/%s: start offsets not resolved at assignment: %s", topic, group, error)
        return
    for tp in partitions:
        if tp.partition in offsets:
            tp.offset = offsets[tp.partition]
    topic = fresh[0].topic
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, at) for p, at in offsets.items()],
            asynchronous=False,
        )
    except KafkaException as error:
        # Reading still begins at the resolved offsets; only a restart before this member
        # stores a position of its own would fall back to ``start`` again.
        log.warning("%s/%s: committing the start offsets failed: %s", topic, group, error)


def _resolve(consumer: Consumer, fresh: list[TopicPartition], start: Start) -> dict[int, int]:
    if isinstance(start, datetime):
        stamp = start_millis(start)
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, stamp) for tp in fresh], timeout=TIMEOUT
        )
        # no record at or after the time: the partition's end, as it is now
        return {
            tp.partition: tp.offset if tp.offset >= 0 else _watermark(consumer, tp, high=True)
            for tp in found
        }
    if isinstance(start, Position):
        wanted = {tp.partition: start.offset(tp.partition, OFFSET_BEGINNING) for tp in fresh}
    elif isinstance(start, int) and not isinstance(start, bool):
        wanted = {tp.partition: start for tp in fresh}
    else:
        return {tp.partition: _watermark(consumer, tp, high=start == "latest") for tp in fresh}
    # an offset of Position's or the caller's: the log's beginning when it names none
    return {
        p: at if at >= 0 else _watermark(consumer, TopicPartition(fresh[0].topic, p), high=False)
        for p, at in wanted.items()
    }


def _watermark(consumer: Consumer, tp: TopicPartition, *, high: bool) -> int:
    low, end = consumer.get_watermark_offsets(
        TopicPartition(tp.topic, tp.partition), timeout=TIMEOUT, cached=False
    )
    return int(end if high else low)
