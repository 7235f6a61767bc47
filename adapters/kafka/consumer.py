"""One member of a Kafka consumer group, on a thread of its own.

At least once: offsets are stored only after the handler answered (``enable.auto.offset.store``
is off) and committed by librdkafka's periodic auto-commit, on partition revoke, and on close.

With one worker, records are handled on the member's thread: a record answered with Retry is
handled again in place, so nothing after it in its partition is delivered first. With
``workers > 1`` (keyed.py), records are handled on that many threads in order per partition
key; a Retry holds only its key, and the offset stored for a partition is the first record not
yet done, so a crash redelivers (never skips) what was running. The reading loop pauses its
partitions while ``keyed.LIMIT`` records are unsettled. librdkafka's prefetch is bounded by
``queued.max.messages.kbytes``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from interchange.adapters.kafka.assignment import begin_fresh
from interchange.adapters.kafka.wire import position, to_delivery
from interchange.adapters.keyed import KeyedWorkers, Watermarks, Work
from interchange.adapters.lifecycle import ConsumerThread, OnThread, run_handler
from interchange.adapters.message import (
    ACK,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Outcome,
    Retry,
    TransportMessage,
    dead_letter_copy,
)
from interchange.adapters.protocols import Start

log = logging.getLogger("interchange.adapters.kafka")
_BATCH = 100
"""Records fetched per consume() call; each is still handled and stored one at a time."""
_NOT_NOW = (KafkaError._UNKNOWN_PARTITION, KafkaError._STATE)
"""store_offsets refusals for a partition not (or no longer, or not yet) known as assigned."""


class GroupMember(OnThread):
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        group: str,
        handler: DeliveryHandler,
        start: Start,
        dead_letter: Callable[[str, TransportMessage], None],
        workers: int = 1,
    ) -> None:
        self.topic, self.group, self.handler, self.start = topic, group, handler, start
        self._dead_letter = dead_letter
        self.lanes: KeyedWorkers | None = None
        if workers > 1:
            name = f"kafka-{topic}-{group}-worker"
            self.lanes = KeyedWorkers(name, workers, handler, self._settle)
        self._marks = Watermarks()
        self._finished: queue.SimpleQueue[tuple[int, int, int]] = queue.SimpleQueue()
        self._generations: dict[int, int] = {}  # per partition, bumped when it is taken away
        self._paused = False
        self._unstored: dict[int, int] = {}  # positions librdkafka refused for now (_store)
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
        step = self._step if self.lanes is None else self._step_keyed
        self.thread = ConsumerThread(f"kafka-{topic}-{group}", step)

    # -- rebalance callbacks (run inside poll, on the member's thread) ----------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s/%s assigned %s", self.topic, self.group, _numbers(partitions))
        foreign = sorted({tp.topic for tp in partitions if tp.topic != self.topic})
        if foreign:
            # A static member (group.instance.id) rejoining gets the coordinator's cached
            # assignment, which is another topic's when the same id and group were used for
            # another subscription. Its records are not this handler's to take.
            log.error(
                "%s/%s was assigned partitions of %s, which it does not subscribe to: the "
                "group's static member id (group.instance.id) is shared with another "
                "subscription; give each its own. Not reading them.",
                self.topic,
                self.group,
                ", ".join(foreign),
            )
            partitions = [tp for tp in partitions if tp.topic == self.topic]
        if partitions:
            begin_fresh(consumer, self.group, partitions, self.start)
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what was handled before another member takes these partitions over.
        log.info("%s/%s revoked %s", self.topic, self.group, _numbers(partitions))
        self._give_up(partitions)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit on revoke failed for %s/%s: %s", self.topic, self.group, error)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may already own them: committing now could skip its work.
        self._give_up(partitions)
        log.warning("%s/%s lost %s; not committing", self.topic, self.group, _numbers(partitions))

    # -- consuming --------------------------------------------------------------------------

    def _step(self, stop: threading.Event) -> None:
        records = self.consumer.consume(_BATCH, 0.5)
        rewound: set[int] = set()  # partitions sought back: the rest of their batch comes again
        settled: dict[int, Message] = {}  # per partition, its last record handled
        handler = self.handler
        try:
            for index, record in enumerate(records):
                if record.error() is not None:
                    self._usable(record)  # logs it unless it is an end of partition
                    continue
                partition = record.partition()
                if rewound and partition in rewound:
                    continue
                if stop.is_set():
                    return  # closing: unhandled records stay unstored for the next owner
                try:  # the usual case (handled at once) inline: a call less is ~3% here
                    delivery = to_delivery(record)
                    outcome = run_handler(handler, delivery)
                    done = outcome is ACK or self._settle_one(record, delivery, outcome, stop)
                except Exception:
                    # Not settled (e.g. the dead-letter topic refused it). Never move past it,
                    # nor past any other partition's unhandled records: a later commit would
                    # skip them.
                    self._rewind(records[index:], rewound)
                    raise
                if done:
                    settled[partition] = record  # type: ignore[index]
                else:
                    self._rewind([record], rewound)
        finally:
            # Once per batch rather than once per record (a C call each): still only offsets
            # whose handler answered, before the next consume() can commit or revoke them.
            if settled:
                self._store({p: cast(int, r.offset()) + 1 for p, r in settled.items()})

    def _usable(self, record: Message) -> bool:
        """A record to handle, not an event of the client's (end of partition, an error)."""
        error = record.error()
        if error is None:
            return True
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("%s/%s: %s", self.topic, self.group, error)
        return False

    def _rewind(self, unhandled: list[Message], rewound: set[int]) -> None:
        """Seek each partition back to its first record in ``unhandled``."""
        for record in unhandled:
            if record.error() is None and record.partition() not in rewound:
                self.consumer.seek(position(record))
                rewound.add(cast(int, record.partition()))

    def _settle_one(
        self, record: Any, delivery: Delivery, outcome: Outcome, stop: threading.Event
    ) -> bool:
        """Deliver until the handler settles the record; False when closing cut it short."""
        for attempt in itertools.count(2):
            if isinstance(outcome, Retry):
                if stop.wait(outcome.delay):
                    return False  # closing: whoever owns the partition next reads it again
                delivery = to_delivery(record, attempt)
                outcome = run_handler(self.handler, delivery)
                continue
            if isinstance(outcome, DeadLetter):
                self._dead_letter(
                    f"{self.topic}.dlq", dead_letter_copy(delivery, outcome, self.group)
                )
            break
        return True

    # -- consuming on several workers, in order per key -------------------------------------

    def _step_keyed(self, stop: threading.Event) -> None:
        assert self.lanes is not None
        self._store_finished()
        if self._paused:
            # Read again once half the bound is free, not at the first free slot: pausing
            # drops librdkafka's prefetch, so each resume waits for a fetch, and the workers
            # need a chunk of work meanwhile (resuming at once for every 100 records left 32
            # workers idle a quarter of the time, measured).
            full = not self.lanes.wait_for_room(0.05, below=self.lanes.limit // 2)
        else:
            full = not self.lanes.wait_for_room(0)
        if full != self._paused:  # keep polling while full: the group must see us alive
            (self.consumer.pause if full else self.consumer.resume)(self.consumer.assignment())
            self._paused = full
        for record in self.consumer.consume(_BATCH, 0 if full else 0.5):
            if not self._usable(record):
                continue
            partition, offset = cast(int, record.partition()), cast(int, record.offset())
            self._marks.add(partition, offset)
            token = (partition, offset, self._generations.get(partition, 0))
            delivery = functools.partial(to_delivery, record)
            self.lanes.submit(Work((partition, record.key()), delivery, token))

    def _settle(self, work: Work, delivery: Delivery, outcome: Outcome) -> None:
        """On a worker: write the dead letter, then tell the reading loop the record is done."""
        if isinstance(outcome, DeadLetter):
            self._dead_letter(f"{self.topic}.dlq", dead_letter_copy(delivery, outcome, self.group))
        self._finished.put(work.token)

    def _store_finished(self) -> None:
        """Store, per partition, the offset after the records done without a gap."""
        stored: dict[int, int] = {}
        while True:
            try:
                partition, offset, generation = self._finished.get_nowait()
            except queue.Empty:
                break
            if generation != self._generations.get(partition, 0):
                continue  # finished after its partition was taken away
            moved = self._marks.done(partition, offset)
            if moved is not None:
                stored[partition] = moved
        self._store(stored)

    def _store(self, positions: dict[int, int]) -> None:
        """Store each partition's next offset to commit.

        librdkafka refuses a partition it holds no assignment or metadata for at that moment;
        the call fails (``_UNKNOWN_PARTITION``, ``_STATE``) only when it could store none of
        them, a partial refusal goes unreported, and a later position of that partition
        covers it. Refused positions are kept and offered again with the next store while the
        loop goes on reading: raising here wedged a keyed member before its next consume(),
        the only place its rebalance callbacks run, and it never recovered (the kill test
        caught it). A partition taken away drops its kept position (``_give_up``)."""
        refused_before = bool(self._unstored)
        if refused_before:
            positions = self._unstored | positions
            self._unstored = {}
        if not positions:
            return
        try:
            self.consumer.store_offsets(
                offsets=[TopicPartition(self.topic, p, at) for p, at in positions.items()]
            )
        except KafkaException as error:
            if error.args[0].code() not in _NOT_NOW:
                raise
            self._unstored = positions
            # once per run of refusals, not at every step (every 0.5 s) while it lasts
            log.log(
                logging.DEBUG if refused_before else logging.WARNING,
                "%s/%s: offsets not stored yet for %s (%s; assigned: %s); kept for the next store",
                self.topic,
                self.group,
                _numbers([TopicPartition(self.topic, p) for p in positions]),
                error.args[0].str(),
                _numbers(self.consumer.assignment()),
            )

    def _give_up(self, partitions: list[TopicPartition]) -> None:
        """Partitions taken away: drop their queued records, let running ones finish (briefly),
        store what is done, and ignore whatever finishes later."""
        numbers = {tp.partition for tp in partitions}
        try:
            if self.lanes is not None:
                ended = self.lanes.drop(lambda key: cast(tuple[int, Any], key)[0] in numbers, 5)
                if not ended:
                    log.warning(
                        "%s/%s: handlers still running on revoked partitions",
                        self.topic,
                        self.group,
                    )
                self._store_finished()
        finally:
            # whatever happened above, their records are the next owner's now
            self._marks.forget(list(numbers))
            for number in numbers:
                self._unstored.pop(number, None)
                self._generations[number] = self._generations.get(number, 0) + 1

    def stop(self) -> None:
        self.thread.stop()
        if self.lanes is not None:
            self.lanes.stop()

    def close(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        self.thread.close(timeout)
        if self.lanes is not None and not self.thread.alive:
            if not self.lanes.join(max(0.0, deadline - time.monotonic())):
                log.error("%s/%s: handlers still running at close", self.topic, self.group)
            self._store_finished()  # the reading loop has ended: this thread may use the client
            self.consumer.close()  # commits only offsets with every record before them done
            return
        if self.thread.alive:
            # a handler outlived the timeout: closing the client under it is not safe; its
            # record stays uncommitted and comes again to the group's next owner
            log.error("%s/%s: a handler is still running; not committing", self.topic, self.group)
            return
        self.consumer.close()  # commits stored offsets and leaves the group


def _numbers(partitions: list[TopicPartition]) -> str:
    return (
        "partitions " + ",".join(str(tp.partition) for tp in partitions) if partitions else "none"
    )
