"""One member of an event consumer group on a Redis stream (``LogReader``).

A member reads only while it holds the group's lease (lease.py), so one member at a time reads
the group and a key's events are handled in publish order, as a Kafka partition's are. When it
takes the lease it first claims every entry the group's earlier readers left pending (XAUTOCLAIM
from ``0-0``, oldest first) and finishes them in order; only then does it read new entries. It
checks the lease before each entry, and stops at the first one it no longer may handle: what it
read and did not handle stays pending for the next holder.

A member retries an entry in place, so nothing after it is handled first. With ``workers > 1``
a member hands entries to that many threads, in order per partition key (keyed.py): a Retry
holds only its key. Losing the lease drops the work queued behind the running entries.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from typing import Any

import redis

from interchange.adapters.keyed import KeyedWorkers, Work
from interchange.adapters.lifecycle import run_handler
from interchange.adapters.message import DeadLetter, Delivery, DeliveryHandler, Outcome, Retry
from interchange.adapters.redis.consumer import _BATCH, _BLOCK_MS, _Reader, consumer_name
from interchange.adapters.redis.lease import GroupLease
from interchange.adapters.redis.partitions import Share, partition_streams

Entry = tuple[bytes, dict[bytes, bytes], int]
"""An entry's id, its fields, and how many times the group delivered it."""


class LogReader(_Reader):
    """One member of an event consumer group."""

    def __init__(
        self,
        client: Any,
        stream: str,
        group: str,
        handler: DeliveryHandler,
        channel: str,
        claim_idle: float,
        name: str,
        workers: int = 1,
        lease_ttl: float = 10.0,
        share: Share | None = None,
        partition: int = 0,
    ) -> None:
        self.lanes: KeyedWorkers | None = None
        if workers > 1:  # before the reading thread starts
            self.lanes = KeyedWorkers(f"{name}-worker", workers, handler, self._settle)
        self._held: set[bytes] = set()  # entries handed to the workers, not yet acknowledged
        self._held_lock = threading.Lock()
        self._caught_up = False  # the previous holders' pending entries are all handled
        self._cursor = b"0-0"  # how far the take-over went through the pending entries
        self.lease: GroupLease | None = None  # once the consumer's name is known
        super().__init__(client, stream, group, handler, channel, claim_idle, name)
        self.partition = partition
        owner = self.consumer if share is None else share.member  # the process, in Redis
        self.lease = GroupLease(client, stream, group, owner, lease_ttl, claim_idle, share)
        self.lease.start()

    def work(self, stop: threading.Event) -> None:
        lease = self.lease
        if lease is None:  # the reading thread started before __init__ finished
            stop.wait(0.05)
            return
        if self.lanes is None or not self.lanes.unsettled:
            lease.touch()  # idle is progress too; with work in hand, a settled entry is
        if not lease.held():
            if self._lost():
                lease.hand_back()  # if it was given up for another member: now it may take it
            lease.wait(_BLOCK_MS / 1000)
            return
        if self.lanes is not None:
            self._work_keyed(self.lanes, lease, stop)
            return
        entries = self._next_entries()
        for entry_id, fields, delivered in entries:
            if stop.is_set() or not lease.held() or not self.handle(entry_id, fields, delivered):
                self._caught_up, self._cursor = False, b"0-0"  # the rest stays pending: ours
                return

    def _next_entries(self) -> list[Entry]:
        """The previous holders' pending entries, a page at a time, until none is left; then
        new entries."""
        if not self._caught_up:
            taken = self._take_over()
            if taken or not self._caught_up:
                return taken
        return [(entry_id, fields, 1) for entry_id, fields in self.read_new()]

    def _take_over(self) -> list[Entry]:
        """The next page of the group's pending entries (this member's own included), oldest
        first, claimed by this member with their delivery counts."""
        cursor, entries, _ = self.client.xautoclaim(
            self.stream, self.group, self.consumer, 0, self._cursor, count=_BATCH
        )
        self._cursor = cursor if isinstance(cursor, bytes) else str(cursor).encode()
        if self._cursor == b"0-0":
            self._caught_up = True
        entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if not entries:  # (fields None: deleted while pending)
            return []
        with self._held_lock:  # this member's own in that range are listed too
            room = len(entries) + len(self._held) + _BATCH
        listed = self.client.xpending_range(
            self.stream, self.group, entries[0][0], entries[-1][0], room, self.consumer
        )
        counts = {pending["message_id"]: int(pending["times_delivered"]) for pending in listed}
        return [(entry_id, fields, counts.get(entry_id, 1)) for entry_id, fields in entries]

    def _lost(self) -> bool:
        """The lease is not (or no longer) this member's: forget what it had not started, and
        start over from the pending entries when it holds the lease again. True when none of
        its entries is still running."""
        self._caught_up, self._cursor = False, b"0-0"
        if self.lanes is None:
            return True  # the one handler runs on this very thread: it is between entries
        ended = not self.lanes.unsettled or self.lanes.drop(lambda _key: True)
        with self._held_lock:
            self._held.clear()
        return ended

    def handle(self, entry_id: bytes, fields: dict[bytes, bytes], delivered: int) -> bool:
        while True:
            if self.lease is not None:
                self.lease.touch()
            delivery = self.delivery(entry_id, fields, delivered)
            outcome = run_handler(self.handler, delivery)
            if not isinstance(outcome, Retry):
                break
            if self.thread.stopping.wait(outcome.delay):
                return False
            delivered += 1
        with self.client.pipeline(transaction=True) as pipe:
            if isinstance(outcome, DeadLetter):
                self.dead_letter(pipe, delivery, outcome)
            pipe.xack(self.stream, self.group, entry_id)
            pipe.execute()
        return True

    # -- several workers, in order per key --------------------------------------------------

    def _work_keyed(self, lanes: KeyedWorkers, lease: GroupLease, stop: threading.Event) -> None:
        if not lanes.wait_for_room(_BLOCK_MS / 1000):
            return
        for entry_id, fields, delivered in self._next_entries():
            if stop.is_set() or not lease.held():
                return  # pending, ours: the next holder takes it over
            with self._held_lock:
                if entry_id in self._held:  # already with the workers (claimed again)
                    continue
                self._held.add(entry_id)
            first = self.delivery(entry_id, fields, delivered)
            again = functools.partial(self._again, entry_id, fields, delivered)
            lanes.submit(Work(first.message.key, again, token=entry_id))

    def _again(
        self, entry_id: bytes, fields: dict[bytes, bytes], delivered: int, attempt: int
    ) -> Delivery:
        """The entry as delivered for the ``attempt``-th time by this member."""
        return self.delivery(entry_id, fields, delivered + attempt - 1)

    def _settle(self, work: Work, delivery: Delivery, outcome: Outcome) -> None:
        entry_id: bytes = work.token
        if self.lease is not None:
            self.lease.touch()
        with self.client.pipeline(transaction=True) as pipe:
            if isinstance(outcome, DeadLetter):
                self.dead_letter(pipe, delivery, outcome)
            pipe.xack(self.stream, self.group, entry_id)
            pipe.execute()
        with self._held_lock:
            self._held.discard(entry_id)

    def stop(self) -> None:
        super().stop()
        if self.lanes is not None:
            self.lanes.stop()

    def close(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        super().close(timeout)
        ended = not self.thread.alive
        if self.lanes is not None:
            ended = self.lanes.join(max(0.0, deadline - time.monotonic())) and ended
        if self.lease is not None:
            # a handler still running keeps the lease until it lapses: no one else may
            # handle the entries after its own meanwhile
            self.lease.close(give_back=ended)


class PartitionedReader:
    """One member of a group on a topic of several partition streams: a LogReader per
    partition, each reading only while it holds that partition's lease, and all of them
    together holding no more than this member's share (partitions.py)."""

    def __init__(
        self,
        client: Any,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        claim_idle: float,
        name: str,
        *,
        partitions: int,
        workers: int,
        lease_ttl: float,
    ) -> None:
        self.name = name
        self.share = Share(client, topic, group, consumer_name(), partitions)
        self.readers = [
            LogReader(
                client,
                stream,
                group,
                handler,
                topic,
                claim_idle,
                f"{name}-p{partition}",
                workers=workers,
                lease_ttl=lease_ttl,
                share=self.share,
                partition=partition,
            )
            for partition, stream in enumerate(partition_streams(topic, partitions))
        ]

    @property
    def alive(self) -> bool:
        """Whether every partition's reading loop still runs."""
        return all(reader.thread.alive for reader in self.readers)

    def stop(self) -> None:
        for reader in self.readers:
            reader.stop()

    def close(self, timeout: float = 10.0) -> None:
        self.stop()
        deadline = time.monotonic() + timeout
        for reader in self.readers:
            reader.close(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(redis.RedisError):  # it expires on its own
            self.share.leave()
