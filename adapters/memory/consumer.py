"""The memory broker's consumer loops: a queue consumer and an event group member. Each is given
what it reads and where dead letters go, never the transport."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from interchange.adapters.lifecycle import ConsumerThread, run_handler
from interchange.adapters.memory import wire
from interchange.adapters.memory.broker import Entry, Group, Queue, Topic
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    DeliveryHandler,
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
                dead_letter(dead_letter_copy(delivery, outcome))
            assert isinstance(outcome, Ack | DeadLetter)
            with log.cond:
                member.offset = offset + 1
            return

    return ConsumerThread(f"memory-subscribe-{topic}-{group}", step)
