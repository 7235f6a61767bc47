"""Reading a dead-letter channel: each dead letter as a DeadLetterRecord, with why it was given
up, how often it was tried, when, and where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interchange.adapters import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_GROUP,
    DLQ_REASON,
    DLQ_SOURCE,
    DLQ_TIME,
    Delivery,
    DeliveryHandler,
    Outcome,
    TransportMessage,
)
from interchange.config import RetryPolicy
from interchange.contracts import Codec, DecodeError, Envelope
from interchange.dispatch import failure_outcome

DEAD_LETTER_HEADERS = (DLQ_REASON, DLQ_ERROR, DLQ_ATTEMPTS, DLQ_SOURCE, DLQ_TIME, DLQ_GROUP)


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message that was given up on, with why. ``envelope`` is None when it never decoded."""

    message: TransportMessage
    reason: str
    error: str
    attempts: int
    source: str
    envelope: Envelope | None
    time: datetime | None = None
    """When it was given up (None for dead letters written before it was recorded)."""
    group: str = ""
    """The consumer group that gave an event up ("" for commands)."""


def record_of(delivery: Delivery, codec: Codec) -> DeadLetterRecord:
    return read_record(delivery.message, codec)


def read_record(message: TransportMessage, codec: Codec) -> DeadLetterRecord:
    headers = dict(message.headers)
    meta = {k: headers.pop(k, "") for k in DEAD_LETTER_HEADERS}
    try:
        envelope: Envelope | None = codec.decode(headers, message.body)
    except DecodeError:
        envelope = None
    attempts = meta[DLQ_ATTEMPTS]
    try:
        when: datetime | None = datetime.fromisoformat(meta[DLQ_TIME])
    except ValueError:
        when = None
    return DeadLetterRecord(
        message=message,
        reason=meta[DLQ_REASON],
        error=meta[DLQ_ERROR],
        attempts=int(attempts) if attempts.isdecimal() else 0,
        source=meta[DLQ_SOURCE],
        envelope=envelope,
        time=when,
        group=meta[DLQ_GROUP],
    )


def dead_letter_reader(
    func: Callable[[DeadLetterRecord], Any], codec: Codec, retry: RetryPolicy
) -> DeliveryHandler:
    """A delivery handler that hands each dead letter to ``func`` as a DeadLetterRecord. A
    reader that raises is retried and given up on like any handler: after its last attempt the
    dead letter moves on to the dead-letter channel's own ``.dlq``, never loops forever."""

    def read(delivery: Delivery) -> Outcome:
        try:
            func(record_of(delivery, codec))
        except Exception as error:
            return failure_outcome(retry, delivery.channel, delivery.attempt, error)
        return ACK

    return read
