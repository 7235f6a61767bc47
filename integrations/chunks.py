"""Large batches stored a chunk at a time, so ``send_many`` / ``publish_many`` of a million
messages never holds a million encoded messages (headers and bodies) at once.

The whole batch is checked first (one contract, as many ids and keys as messages) and every id
is chosen up front; then each chunk of ``CHUNK`` contracts is encoded and stored before the
next is encoded. When a chunk is not stored, the error's ``failed`` lists that chunk's ids the
transport reported (all of them when it reported none) and every id after it: the chunks
before it are stored, and nothing after it was tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from interchange.adapters import EventTransport, TransportError, TransportMessage

CHUNK = 10_000
"""Contracts encoded and stored at a time: large enough that confirms and delivery reports
stay pipelined (a flush per 10,000 costs nothing measurable), small enough that a chunk's
encoded messages are a few MB."""

T = TypeVar("T")


def stored_in_chunks(
    ids: list[str], encode: Callable[[slice], T], store: Callable[[T], None]
) -> None:
    """Encode and store the messages of ``ids`` ``CHUNK`` at a time: ``encode(part)`` builds
    those of ``ids[part]``, and only once the chunk before them was stored."""
    for start in range(0, len(ids), CHUNK):
        part = slice(start, start + CHUNK)
        chunk = encode(part)
        try:
            store(chunk)
        except TransportError as error:
            error.failed = [*(error.failed or ids[part]), *ids[part.stop :]]
            raise


def publish_per_topic(events: EventTransport, per_topic: dict[str, list[TransportMessage]]) -> None:
    """A chunk of events: on each topic its version's records (one topic unless the route
    publishes several versions side by side)."""
    for topic, messages in per_topic.items():
        events.publish_many(topic, messages)
