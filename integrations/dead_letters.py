"""Reading a dead-letter channel: each dead letter as a DeadLetterRecord, with why it was given
up, how often it was tried and where it came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interchange.adapters import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE,
    Delivery,
    DeliveryHandler,
    Outcome,
    TransportMessage,
)
from interchange.config import RetryPolicy
from interchange.contracts import Codec, DecodeError, Envelope
from interchange.dispatch import failure_outcome


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message that was given up on, with why. ``envelope`` is None when it never decoded."""

    message: TransportMessage
    reason: str
    error: str
    attempts: int
    source: str
    envelope: Envelope | None


def record_of(delivery: Delivery, codec: Codec) -> DeadLetterRecord:
    message = delivery.message
    headers = dict(message.headers)
    meta = {k: headers.pop(k, "") for k in (DLQ_REASON, DLQ_ERROR, DLQ_ATTEMPTS, DLQ_SOURCE)}
    try:
        envelope: Envelope | None = codec.decode(headers, message.body)
    except DecodeError:
        envelope = None
    attempts = meta[DLQ_ATTEMPTS]
    return DeadLetterRecord(
        message=message,
        reason=meta[DLQ_REASON],
        error=meta[DLQ_ERROR],
        attempts=int(attempts) if attempts.isdigit() else 0,
        source=meta[DLQ_SOURCE],
        envelope=envelope,
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
