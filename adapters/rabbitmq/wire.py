"""TransportMessage ⇄ AMQP 0-9-1 message, both directions.

The id travels as ``message_id``; headers as application headers (strings); the content type
as the AMQP property. A request's reply address, as a consumer sees it, is
``<reply-to address>#<correlation id>`` (``reply_address`` / ``untoken``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import amqp

from interchange.adapters.message import (
    ATTEMPT_HEADER,
    CONTENT_TYPE,
    Delivery,
    TransportMessage,
    cloudevents_id,
)
from interchange.adapters.rabbitmq import CAPABILITIES

_ID_HEADER = cloudevents_id(CAPABILITIES.header_prefix)


def to_amqp(
    message: TransportMessage,
    *,
    attempt: int = 0,
    correlation_id: str | None = None,
    persistent: bool = True,
) -> amqp.Message:
    """``persistent=False`` for what is worthless once its sender is gone (a request, whose
    requester waits for its reply on its own channel; a reply): RabbitMQ then confirms it
    without waiting for the disk."""
    headers = {k: v for k, v in message.headers.items() if k != CONTENT_TYPE}
    if attempt:
        headers[ATTEMPT_HEADER] = str(attempt)
    properties: dict[str, Any] = {
        "message_id": message.id,
        "delivery_mode": 2 if persistent else 1,
        "application_headers": headers,
        "content_type": message.headers.get(CONTENT_TYPE, "application/octet-stream"),
    }
    if message.reply_to is not None:
        properties["reply_to"] = message.reply_to
    if correlation_id is not None:
        properties["correlation_id"] = correlation_id
    return amqp.Message(message.body, **properties)


def from_amqp(raw: amqp.Message, queue: str) -> tuple[Delivery, bool]:
    """A delivery as our handlers see it, and whether it is a broker redelivery that nothing
    counted (a classic queue after a consumer died). Header values become strings (bytes
    decoded, numbers printed); nested tables such as ``x-death`` are dropped."""
    properties: Mapping[str, Any] = raw.properties
    headers: dict[str, str] = {}
    for key, value in (properties.get("application_headers") or {}).items():
        if isinstance(value, bytes):
            headers[str(key)] = value.decode("utf-8", "replace")
        elif isinstance(value, str | int | float | bool):
            headers[str(key)] = str(value)
    ours = headers.pop(ATTEMPT_HEADER, "0")
    earlier = int(ours) if ours.isdecimal() else 0
    if properties.get("content_type"):
        headers[CONTENT_TYPE] = str(properties["content_type"])
    body = bytes(raw.body) if not isinstance(raw.body, bytes) else raw.body
    message_id = properties.get("message_id") or headers.get(_ID_HEADER)
    if not message_id:  # a legacy sender set no id: the body's hash keeps redeliveries equal
        message_id = "amqp-" + hashlib.sha256(body).hexdigest()[:32]
    reply_to = properties.get("reply_to")
    token = reply_address(reply_to, properties.get("correlation_id") or message_id)
    redelivered = bool(raw.delivery_info.get("redelivered"))
    # Quorum queues count deliveries for us; classic ones only say "redelivered".
    broker_count = headers.pop("x-delivery-count", "")
    counted = broker_count.isdecimal()
    extra = int(broker_count) if counted else int(redelivered)
    delivery = Delivery(
        TransportMessage(str(message_id), body, headers, reply_to=token),
        queue,
        attempt=earlier + extra + 1,
        redelivered=redelivered or earlier > 0,
    )
    return delivery, redelivered and not counted


def reply_address(reply_to: str | None, correlation: str) -> str | None:
    """The opaque reply address a delivered request carries."""
    return f"{reply_to}#{correlation}" if reply_to else None


def untoken(token: str | None) -> tuple[str | None, str | None]:
    """(reply-to address, correlation id) of a reply address."""
    if not token:
        return None, None
    queue, _, correlation = token.partition("#")
    return queue, correlation or None
