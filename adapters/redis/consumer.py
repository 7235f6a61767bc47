"""Consumer-group readers on Redis Streams, one thread each, given the client (never the
transport).

Commands (``QueueReader``): entries are read with XREADGROUP ``>`` and acknowledged (XACK, and
XDEL on a point-to-point stream, which only its one group reads) after the handler answered.
A retried entry stays pending in this consumer and is claimed back (XCLAIM) when its delay is
over: it never re-enters the stream, so on a broadcast stream no other group sees it again.
Entries left pending by a consumer that died are taken over with XAUTOCLAIM once idle for
``claim_idle`` seconds; their delivery count comes from XPENDING.

Events: ``LogReader`` (log_reader.py), one member of a group at a time, under a lease.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis

from interchange.adapters.lifecycle import Backoff, ConsumerThread, OnThread, run_handler
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Outcome,
    Retry,
    dead_letter_copy,
)
from interchange.adapters.redis.errors import UNREACHABLE
from interchange.adapters.redis.wire import to_delivery, to_fields

log = logging.getLogger("interchange.adapters.redis")
_BLOCK_MS = 500
READ_BLOCK = _BLOCK_MS / 1000
"""Seconds a read waits for new entries: the client readers are given answers within it."""
_BATCH = 100
"""Entries read per XREADGROUP (and acknowledged together): 20 held a queue consumer to
~13k/s, a round trip per 20 entries (measured)."""


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Reader(OnThread):
    def __init__(
        self,
        client: Any,  # redis.Redis; its replies are typed as sync/async unions
        stream: str,
        group: str,
        handler: DeliveryHandler,
        channel: str,
        claim_idle: float,
        name: str,
    ) -> None:
        self.client, self.stream, self.group = client, stream, group
        self.handler, self.channel = handler, channel
        self.claim_idle_ms = int(claim_idle * 1000)
        self.partition = 0  # of a partitioned topic (LogReader): what its positions name
        self.consumer = consumer_name()
        self._next_claim = 0.0
        self._backoff = Backoff()
        self._name = name  # the loop may run before self.thread is assigned
        self.thread = ConsumerThread(name, self._step)

    def _step(self, stop: threading.Event) -> None:
        try:
            self.work(stop)
            self._backoff.reset()
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # the group vanished (a Redis without persistence restarted): declare it again
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except UNREACHABLE as error:
            log.warning(
                "%s lost Redis: %s; retrying in %.1fs", self._name, error, self._backoff.next
            )
            self._backoff.wait(stop)

    def work(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def read_new(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        answer = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=_BATCH, block=_BLOCK_MS
        )
        return list(answer[0][1]) if answer else []

    def claim_abandoned(self) -> list[tuple[bytes, dict[bytes, bytes], int]]:
        """Entries another consumer left pending for ``claim_idle``: it is presumed dead."""
        if time.monotonic() < self._next_claim:
            return []
        self._next_claim = time.monotonic() + max(1.0, self.claim_idle_ms / 4000)
        _, entries, _ = self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=_BATCH
        )
        entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if not entries:  # (fields None: deleted while pending)
            return []
        # their delivery counts in one XPENDING over the claimed range, not one call each
        first, last = entries[0][0], entries[-1][0]
        listed = self.client.xpending_range(
            self.stream, self.group, first, last, 2 * len(entries) + _BATCH, self.consumer
        )  # this consumer's: the claimed ones, and any it holds itself in that range
        counts = {pending["message_id"]: int(pending["times_delivered"]) for pending in listed}
        claimed = []
        for entry_id, fields in entries:
            if entry_id not in counts:  # crowded out of the listing: asked on its own
                [pending] = self.client.xpending_range(
                    self.stream, self.group, entry_id, entry_id, 1
                )
                counts[entry_id] = int(pending["times_delivered"])
            claimed.append((entry_id, fields, counts[entry_id]))
        return claimed

    def delivery(self, entry_id: bytes, fields: dict[bytes, bytes], delivered: int) -> Delivery:
        return to_delivery(
            self.stream,
            entry_id,
            fields,
            channel=self.channel,
            delivered=delivered,
            partition=self.partition,
        )

    def dead_letter(self, pipe: Any, delivery: Delivery, outcome: DeadLetter) -> None:
        # a queue's group is the queue itself; an event group is worth naming
        group = self.group if self.group != self.channel else None
        dead = dead_letter_copy(delivery, outcome, group)
        pipe.xadd(f"{self.channel}.dlq", to_fields(dead))

    def stop(self) -> None:
        self.thread.stop()

    def close(self, timeout: float = 10.0) -> None:
        self.thread.close(timeout)


class QueueReader(_Reader):
    """Competing consumers of one group: a queue, or one broadcast group's share."""

    def __init__(self, *args: Any, delete_acked: bool, **kwargs: Any) -> None:
        self.delete_acked = delete_acked
        self._due: list[tuple[float, bytes]] = []  # retries waiting for their delay
        self._deliveries: dict[bytes, int] = {}
        super().__init__(*args, **kwargs)

    def work(self, stop: threading.Event) -> None:
        settled: list[tuple[bytes, Delivery, Outcome]] = []
        try:
            for entry_id, fields, delivered in self.claim_abandoned():
                self.handle(entry_id, fields, delivered, settled)
            for entry_id, fields in self._claim_due():
                self.handle(entry_id, fields, self._deliveries.get(entry_id, 0) + 1, settled)
            for entry_id, fields in self.read_new():
                if stop.is_set():
                    return  # unhandled entries stay pending and are claimed by another consumer
                self.handle(entry_id, fields, 1, settled)
        finally:
            self._settle_all(settled)

    def _settle_all(self, settled: list[tuple[bytes, Delivery, Outcome]]) -> None:
        """Acknowledge (and write the dead letters of) the entries whose handler answered, in
        one transaction per batch read — one round trip instead of one per entry, which held
        consumption to ~4k/s (measured). Only ever after their handlers: at least once."""
        if not settled:
            return
        with self.client.pipeline(transaction=True) as pipe:
            for _, delivery, outcome in settled:
                if isinstance(outcome, DeadLetter):
                    self.dead_letter(pipe, delivery, outcome)
                else:
                    assert isinstance(outcome, Ack)
            ids = [entry_id for entry_id, _, _ in settled]
            pipe.xack(self.stream, self.group, *ids)  # one command for the batch, not one each
            if self.delete_acked:
                pipe.xdel(self.stream, *ids)
            pipe.execute()
        for entry_id, _, _ in settled:
            self._deliveries.pop(entry_id, None)

    def _claim_due(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        now = time.monotonic()
        due = []
        while self._due and self._due[0][0] <= now:
            due.append(heapq.heappop(self._due)[1])
        if not due:
            return []
        claimed = self.client.xclaim(self.stream, self.group, self.consumer, 0, due)
        return [(entry_id, fields) for entry_id, fields in claimed if fields is not None]

    def handle(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        delivered: int,
        settled: list[tuple[bytes, Delivery, Outcome]],
    ) -> None:
        self._deliveries[entry_id] = delivered
        delivery = self.delivery(entry_id, fields, delivered)
        outcome = run_handler(self.handler, delivery)
        if isinstance(outcome, Retry):
            heapq.heappush(self._due, (time.monotonic() + outcome.delay, entry_id))
            return
        settled.append((entry_id, delivery, outcome))
