"""What an operator settled on a dead-letter *log* (a topic, which cannot delete a record in
the middle): per partition, a floor below which every record is settled and the settled offsets
above it, kept as the committed offset and its metadata of one consumer group of its own.

``interchange dlq requeue --since T`` settles the newest records and keeps older ones; the
ranges above the floor keep them from being shown, or requeued, again. Once the older ones are
settled too the floor moves past them all and the ranges empty."""

from __future__ import annotations

from dataclasses import dataclass, field

OPERATOR_GROUP = "interchange.dead-letter-operator"
"""The consumer group whose committed position and metadata hold what was settled."""
METADATA_LIMIT = 4000
"""Kafka's default ``offset.metadata.max.bytes`` is 4096."""


@dataclass
class Settled:
    """One partition's settled records."""

    floor: int
    above: set[int] = field(default_factory=set)

    @classmethod
    def decode(cls, floor: int, metadata: str | None) -> Settled:
        """From a committed offset and its metadata (``"7-9,12-12"``); ranges below the floor
        are dropped, unreadable metadata is read as none."""
        above: set[int] = set()
        for part in (metadata or "").split(","):
            first, _, last = part.partition("-")
            if first.isdecimal() and last.isdecimal():
                above.update(range(max(int(first), floor), int(last) + 1))
        return cls(floor, above)

    def __contains__(self, offset: int) -> bool:
        return offset < self.floor or offset in self.above

    def settle(self, offset: int) -> None:
        self.above.add(offset)
        while self.floor in self.above:  # the floor takes in what it reaches
            self.above.remove(self.floor)
            self.floor += 1

    def encode(self) -> str:
        """The ranges above the floor: ``"7-9,12-12"``. Raises ValueError past METADATA_LIMIT
        (a sweep that settled too scattered a selection: settle the older records too)."""
        ranges: list[str] = []
        start = previous = None
        for offset in sorted(self.above):
            if previous is not None and offset == previous + 1:
                previous = offset
                continue
            if start is not None:
                ranges.append(f"{start}-{previous}")
            start = previous = offset
        if start is not None:
            ranges.append(f"{start}-{previous}")
        text = ",".join(ranges)
        if len(text) > METADATA_LIMIT:
            raise ValueError(
                f"{len(ranges)} separate settled ranges exceed what a commit can carry: settle "
                "the records kept between them (e.g. purge them) first"
            )
        return text
