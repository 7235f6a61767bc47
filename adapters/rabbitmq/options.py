"""The options an amqp:// URL's query may carry; any other is refused."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveFloat, PositiveInt

from interchange.adapters.urls import Options


class RabbitMQOptions(Options):
    prefetch: PositiveInt = 100
    """Unacknowledged messages one consumer may hold."""
    ack_every: PositiveInt = 25
    """Handled messages a consumer acknowledges together (multiple=True); owed acks also go
    out after 50 ms without a delivery and when it stops. A consumer killed outright leaves
    up to this many handled messages to be delivered again: 1 for one ack per message (half
    the throughput, measured), and a shared ``dedupe`` store makes either safe."""
    queue_type: Literal["classic", "quorum"] = "classic"
    window: PositiveInt = 500
    """Unconfirmed publishes in flight before the publisher drains acks."""
    confirm_timeout: PositiveFloat = 30.0
    connect_timeout: PositiveFloat = 10.0
    heartbeat: int = 30
