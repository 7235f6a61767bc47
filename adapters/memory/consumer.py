"""The memory broker's consumer loops: a queue consumer and an event group member. Each is given
what it reads and where dead letters go, never the transport."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable

from interchange.adapters.keyed import KeyedWorkers, Watermarks, Work
from interchange.adapters.lifecycle import ConsumerThread, OnThread, run_handler
from interchange.adapters.memory import wire
from interchange.adapters.memory.broker import Entry, Group, Queue, Topic
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Outcome,
    Retry,
    TransportMessage,
    dead_letter_copy,
)

POLL = 0.05
"""Seconds a loop waits for work before checking whether it should stop."""


def queue_consumer(
    name: str, source: Queue, dead_letters: Queue, handler: DeliveryHandler
) -> ConsumerThread:
    """Competing consumer of one queue: settles each entry after the handler answered."""

    def step(stop: threading.Event) -> None:
        entry = source.take(POLL)
        if entry is None:
            return
        delivery = wire.queued(entry, source.name)
        outcome = run_handler(handler, delivery)
        if not source.settle(entry):
            return  # the broker restarted meanwhile and already requeued it
        if isinstance(outcome, Retry):
            entry.not_before = time.monotonic() + outcome.delay
            source.put(entry)
        elif isinstance(outcome, DeadLetter):
            dead_letters.put(Entry(dead_letter_copy(delivery, outcome)))

    return ConsumerThread(f"memory-consume-{name}", step)


def group_member(
    topic: str,
    log: Topic,
    group: str,
    member: Group,
    handler: DeliveryHandler,
    dead_letter: Callable[[TransportMessage], None],
    epoch: Callable[[], int],
) -> ConsumerThread:
    """One member of an event group; members take turns, so the group reads in order."""

    def step(stop: threading.Event) -> None:
        if not member.turn.acquire(timeout=POLL):
            return
        try:
            _deliver_next(stop)
        finally:
            member.turn.release()

    def _deliver_next(stop: threading.Event) -> None:
        with log.cond:
            offset = member.offset
            if offset >= len(log.records) and not log.cond.wait(POLL):
                return
            if offset >= len(log.records) or offset != member.offset:
                return
            stamp, message = log.records[offset]
        for attempt in itertools.count(1):
            started_in = epoch()
            delivery = wire.logged(message, topic, offset, stamp, attempt)
            outcome = run_handler(handler, delivery)
            if started_in != epoch():
                return  # restarted meanwhile: no commit, the record comes again
            if isinstance(outcome, Retry):
                if stop.wait(outcome.delay):
                    return  # closing: leave the record uncommitted for the next member
                continue
            if isinstance(outcome, DeadLetter):
                dead_letter(dead_letter_copy(delivery, outcome, group))
            assert isinstance(outcome, Ack | DeadLetter)
            with log.cond:
                member.offset = offset + 1
            return

    return ConsumerThread(f"memory-subscribe-{topic}-{group}", step)


class KeyedMember(OnThread):
    """A group member handling records on several workers, in order per partition key
    (keyed.py). It holds the group's turn for its whole life, so the group reads through it
    alone, and moves the group's offset only past records that are all done."""

    def __init__(
        self,
        topic: str,
        log: Topic,
        group: str,
        member: Group,
        handler: DeliveryHandler,
        dead_letter: Callable[[TransportMessage], None],
        epoch: Callable[[], int],
        workers: int,
    ) -> None:
        self.topic, self.log, self.member, self.group = topic, log, member, group
        self._dead_letter, self._epoch = dead_letter, epoch
        name = f"memory-subscribe-{topic}-{group}"
        self.lanes = KeyedWorkers(f"{name}-worker", workers, handler, self._settle)
        self._marks = Watermarks()
        self._lock = threading.Lock()
        self._cursor: int | None = None  # None until this member holds the group's turn
        self._read_in = -1  # the broker epoch the cursor belongs to
        self.thread = ConsumerThread(name, self._step)

    def _step(self, stop: threading.Event) -> None:
        if self._cursor is None and not self.member.turn.acquire(timeout=POLL):
            return
        if self._cursor is None or self._read_in != self._epoch():
            # first turn, or the broker restarted: read again from the group's offset
            self.lanes.drop(lambda key: True)
            with self._lock:
                self._read_in = self._epoch()
                self._marks.forget()
            with self.log.cond:
                self._cursor = self.member.offset
        if not self.lanes.wait_for_room(POLL):
            return
        with self.log.cond:
            if self._cursor >= len(self.log.records):
                self.log.cond.wait(POLL)
            batch = self.log.records[self._cursor : self._cursor + 100]
        for offset, (stamp, message) in enumerate(batch, start=self._cursor):
            with self._lock:
                self._marks.add(0, offset)
            delivery = functools.partial(wire.logged, message, self.topic, offset, stamp)
            self.lanes.submit(Work(message.key, delivery, (offset, self._read_in)))
        self._cursor += len(batch)

    def _settle(self, work: Work, delivery: Delivery, outcome: Outcome) -> None:
        if isinstance(outcome, DeadLetter):
            self._dead_letter(dead_letter_copy(delivery, outcome, self.group))
        offset, read_in = work.token
        with self._lock:
            if read_in != self._epoch():
                return  # restarted meanwhile: no commit, the record comes again
            moved = self._marks.done(0, offset)
        if moved is not None:
            with self.log.cond:
                self.member.offset = max(self.member.offset, moved)

    def stop(self) -> None:
        self.thread.stop()
        self.lanes.stop()

    def close(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        self.thread.close(timeout)
        self.lanes.join(max(0.0, deadline - time.monotonic()))
        if self._cursor is not None:
            self._cursor = None
            self.member.turn.release()
