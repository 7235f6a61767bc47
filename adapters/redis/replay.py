"""Reading a topic's partition streams again without a group: replay, and its positions.

A replayed delivery's position is the replay's cursor: for every partition of the topic, the
id of the next entry to read there (the delivery's own in its partition; in the others the one
after the last entry yielded from it, or the window's start if none was). Entries of several
streams can share an id (ids are per stream: millisecond and a sequence of its own), so one id
cannot say where a replay was in every partition; starting from this cursor reads, in each
partition, exactly what the replay had not yet yielded, in the same merged order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from interchange.adapters.message import Delivery, Position
from interchange.adapters.protocols import Start
from interchange.adapters.redis.errors import mapped
from interchange.adapters.redis.partitions import merged
from interchange.adapters.redis.wire import first_id, last_id, offset_of, to_delivery

_PAGE = 500


def replay(
    client: Any, url: str, topic: str, streams: list[str], since: Start, until: datetime | None
) -> Iterator[Delivery]:
    """Every partition's entries from ``since`` (per partition, for a Position) to ``until``,
    merged in id (time) order, each carrying the replay's cursor as its position."""
    if since == "latest":
        return
    high = last_id(until)
    lows = {stream: first_id(since, partition) for partition, stream in enumerate(streams)}
    cursor = {partition: offset_of(lows[stream]) for partition, stream in enumerate(streams)}

    def read(stream: str) -> Iterator[tuple[bytes, Any]]:
        low = lows[stream]
        while True:
            with mapped(url, f"read {stream!r}"):
                entries = client.xrange(stream, min=low, max=high, count=_PAGE)
            yield from entries
            if len(entries) < _PAGE:
                return
            low = "(" + entries[-1][0].decode()

    for partition, entry, fields in merged(streams, read):
        here = offset_of(entry)
        cursor[partition] = here  # starting there reads this entry again, then the rest
        yield to_delivery(
            streams[partition], entry, fields, channel=topic, position=Position.at(cursor)
        )
        cursor[partition] = here + 1  # the next id this partition can hold
