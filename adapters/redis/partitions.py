"""A topic as several streams (``?partitions=N``), so several members of a group read at once
while each key keeps its order, as Kafka's partitions do.

Partition 0 is the stream named after the topic (so ``partitions=1``, the default, is the one
stream it always was, and a topic that grows keeps its old entries readable in partition 0);
partition ``i`` is ``<topic>:<i>``. The count is recorded in ``interchange:partitions:<topic>``
on first use, and a process configured with another is refused. A keyed entry goes to the
partition its key's CRC-32 picks, an unkeyed one by its id's. Each partition stream has the
group's lease of its own (lease.py); a member holds at most its share of them,
``ceil(partitions / live members)``, counting the members that announced themselves in
``interchange:members:<topic>|<group>`` (a sorted set of member → expiry, refreshed with the
leases). A member over its share when another joins gives one lease back between two entries,
and the newcomer takes it, finishing its pending entries first.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from interchange.adapters.errors import InvalidURL
from interchange.adapters.message import TransportMessage
from interchange.adapters.redis.errors import mapped

_REFRESH = 0.5
"""Seconds between a member's looks at the membership (its leases ask far more often)."""


def partition_streams(topic: str, partitions: int) -> list[str]:
    return [topic, *(f"{topic}:{i}" for i in range(1, partitions))]


class Layout:
    """A transport's topics as partition streams, each topic's count checked against the one
    on record: a process configured with another would send keys to other streams than its
    peers, and their order would be lost."""

    def __init__(self, client: Any, url: str, partitions: int) -> None:
        self.client, self.url, self.partitions = client, url, partitions
        self._agreed: set[str] = set()

    def streams(self, topic: str) -> list[str]:
        if topic not in self._agreed:
            key = f"interchange:partitions:{topic}"
            doing = f"read the partitions of {topic!r}"
            with mapped(self.url, doing), self.client.pipeline(transaction=False) as pipe:
                pipe.set(key, self.partitions, nx=True)  # the first to use the topic
                pipe.get(key)
                recorded = int(pipe.execute()[1])
            if recorded != self.partitions:
                raise InvalidURL(
                    f"topic {topic!r} has {recorded} partitions on this Redis, this URL says "
                    f"partitions={self.partitions}: every process of a topic needs the same "
                    f"(to change it, stop them all and DEL {key})"
                )
            self._agreed.add(topic)
        return partition_streams(topic, self.partitions)


def partition_of(message: TransportMessage, partitions: int) -> int:
    if partitions == 1:
        return 0
    chosen = message.key if message.key is not None else message.id
    return zlib.crc32(chosen.encode()) % partitions


def by_partition(
    streams: list[str], messages: list[TransportMessage]
) -> dict[str, list[TransportMessage]]:
    """The messages per partition stream, in order within each."""
    split: dict[str, list[TransportMessage]] = {}
    for message in messages:
        split.setdefault(streams[partition_of(message, len(streams))], []).append(message)
    return split


def merged(
    streams: list[str], read: Callable[[str], Iterator[tuple[bytes, Any]]]
) -> Iterator[tuple[int, bytes, Any]]:
    """Every partition's entries, (partition, id, fields), merged in id (time) order; entries
    of several partitions with the same id in partition order. Each partition's own order is
    kept, so the entries after any one of them are, per partition, the rest of that partition:
    a replay resumed from every partition's next entry goes on exactly where it was."""

    def tagged(partition: int) -> Iterator[tuple[tuple[int, int, int], bytes, Any]]:
        for entry_id, fields in read(streams[partition]):
            millis, _, seq = entry_id.partition(b"-")
            yield (int(millis), int(seq or 0), partition), entry_id, fields

    for (_, _, partition), entry_id, fields in heapq.merge(
        *(tagged(p) for p in range(len(streams)))
    ):
        yield partition, entry_id, fields


class Share:
    """One member's part of a partitioned group: which leases it holds, and how many it may."""

    def __init__(self, client: Any, topic: str, group: str, member: str, partitions: int) -> None:
        self.client, self.member, self.partitions = client, member, partitions
        self.key = f"interchange:members:{topic}|{group}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._live = 1
        self._next_look = 0.0

    def look(self, ttl: float) -> None:
        """Announce this member for ``ttl`` and count the live ones (at most twice a second)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_look:
                return
            self._next_look = now + _REFRESH
        wall = int(time.time() * 1000)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {self.member: wall + int(ttl * 1000)})
            pipe.zremrangebyscore(self.key, "-inf", wall)
            pipe.zcard(self.key)
            pipe.pexpire(self.key, int(ttl * 1000) * 2)
            live = pipe.execute()[2]
        self._live = max(1, int(live))

    def fair(self) -> int:
        return math.ceil(self.partitions / self._live)

    def may_take(self) -> bool:
        with self._lock:
            return len(self._held) < self.fair()

    def over(self) -> bool:
        with self._lock:
            return len(self._held) > self.fair()

    def took(self, lease: str) -> None:
        with self._lock:
            self._held.add(lease)

    def left(self, lease: str) -> None:
        with self._lock:
            self._held.discard(lease)

    def leave(self) -> None:
        self.client.zrem(self.key, self.member)
