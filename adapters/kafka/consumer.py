"""One member of a Kafka consumer group, on a thread of its own .

At least once: offsets are stored only after the handler answered (``enable.auto.offset.store``
is off) and committed by librdkafka's periodic auto-commit, on partition revoke, and on close.
A record answered with Retry is handled again in place, so nothing after it in its partition is
delivered first. In-flight work is one record per member; librdkafka's prefetch is bounded by
``queued.max.messages.kbytes``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from interchange.adapters.kafka.wire import position, start_millis, to_delivery
from interchange.adapters.lifecycle import ConsumerThread, run_handler
from interchange.adapters.message import (
    DeadLetter,
    DeliveryHandler,
    Position,
    Retry,
    TransportMessage,
    dead_letter_copy,
)
from interchange.adapters.protocols import Start

log = logging.getLogger("interchange.adapters.kafka")
_BATCH = 100
"""Records fetched per consume() call; each is still handled and stored one at a time."""


class GroupMember:
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        group: str,
        handler: DeliveryHandler,
        start: Start,
        dead_letter: Callable[[str, TransportMessage], None],
    ) -> None:
        self.topic, self.group, self.handler, self.start = topic, group, handler, start
        self._dead_letter = dead_letter
        self.consumer = Consumer(
            {
                **config,
                "group.id": group,
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "latest" if start == "latest" else "earliest",
            }
        )
        self.consumer.subscribe(
            [topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self.thread = ConsumerThread(f"kafka-{topic}-{group}", self._step)

    # -- rebalance callbacks (run inside poll, on the member's thread) ----------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if isinstance(self.start, int | datetime | Position) and not isinstance(self.start, bool):
            committed = consumer.committed(partitions, timeout=10)
            fresh = [tp for tp in committed if tp.offset < 0]  # never committed by this group
            if isinstance(self.start, datetime):
                stamp = start_millis(self.start)
                found = consumer.offsets_for_times(
                    [TopicPartition(tp.topic, tp.partition, stamp) for tp in fresh], timeout=10
                )
                offsets = {
                    tp.partition: tp.offset if tp.offset >= 0 else OFFSET_END for tp in found
                }
            elif isinstance(self.start, Position):
                offsets = {
                    tp.partition: self.start.offset(tp.partition, OFFSET_BEGINNING) for tp in fresh
                }
            else:
                offsets = {tp.partition: self.start for tp in fresh}
            for tp in partitions:
                if tp.partition in offsets:
                    tp.offset = offsets[tp.partition]
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what was handled before another member takes these partitions over.
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit on revoke failed for %s/%s: %s", self.topic, self.group, error)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may already own them: committing now could skip its work.
        log.warning(
            "%s/%s lost %d partition(s); not committing", self.topic, self.group, len(partitions)
        )

    # -- consuming --------------------------------------------------------------------------

    def _step(self, stop: threading.Event) -> None:
        records = self.consumer.consume(_BATCH, 0.5)
        rewound: set[int] = set()  # partitions sought back: the rest of their batch comes again
        for index, record in enumerate(records):
            error = record.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s/%s: %s", self.topic, self.group, error)
                continue
            if record.partition() in rewound:
                continue
            if stop.is_set():
                return  # closing: unhandled records stay unstored, so the next owner reads them
            try:
                settled = self._handle(record, stop)
            except Exception:
                # Not settled (e.g. the dead-letter topic refused it). Never move past it, nor
                # past any other partition's unhandled records: a later commit would skip them.
                self._rewind(records[index:], rewound)
                raise
            if not settled:
                self._rewind([record], rewound)

    def _rewind(self, unhandled: list[Message], rewound: set[int]) -> None:
        """Seek each partition back to its first record in ``unhandled``."""
        for record in unhandled:
            if record.error() is None and record.partition() not in rewound:
                self.consumer.seek(position(record))
                rewound.add(cast(int, record.partition()))

    def _handle(self, record: Any, stop: threading.Event) -> bool:
        """Deliver until the handler settles the record; False when closing cut it short."""
        for attempt in itertools.count(1):
            delivery = to_delivery(record, attempt)
            outcome = run_handler(self.handler, delivery)
            if isinstance(outcome, Retry):
                if stop.wait(outcome.delay):
                    return False  # closing: whoever owns the partition next reads it again
                continue
            if isinstance(outcome, DeadLetter):
                self._dead_letter(f"{self.topic}.dlq", dead_letter_copy(delivery, outcome))
            break
        self.consumer.store_offsets(message=record)
        return True

    def stop(self) -> None:
        self.thread.stop()

    def close(self, timeout: float = 10.0) -> None:
        self.thread.close(timeout)
        if self.thread.alive:
            # a handler outlived the timeout: closing the client under it is not safe; its
            # record stays uncommitted and comes again to the group's next owner
            log.error("%s/%s: a handler is still running; not committing", self.topic, self.group)
            return
        self.consumer.close()  # commits stored offsets and leaves the group
