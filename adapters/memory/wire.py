"""The memory broker keeps TransportMessages as they are; this is how its entries and records
become deliveries."""

from __future__ import annotations

from interchange.adapters.memory.broker import Entry
from interchange.adapters.message import Delivery, Position, TransportMessage


def queued(entry: Entry, queue: str) -> Delivery:
    """A queue entry as delivered: its attempt is how often the broker handed it out."""
    return Delivery(
        entry.message, queue, attempt=entry.deliveries, redelivered=entry.deliveries > 1
    )


def logged(
    message: TransportMessage, topic: str, offset: int, stamp: float, attempt: int = 1
) -> Delivery:
    """A record of a topic's log as delivered, with its offset and time."""
    return Delivery(
        message,
        topic,
        attempt=attempt,
        redelivered=attempt > 1,
        offset=offset,
        timestamp=stamp,
        position=Position.at({0: offset}),
    )
