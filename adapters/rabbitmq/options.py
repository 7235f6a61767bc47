"""The options an amqp:// URL's query may carry; any other is refused."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveFloat, PositiveInt

from interchange.adapters.urls import Options


class RabbitMQOptions(Options):
    prefetch: PositiveInt = 100
    """Unacknowledged messages one consumer may hold."""
    queue_type: Literal["classic", "quorum"] = "classic"
    window: PositiveInt = 500
    """Unconfirmed publishes in flight before the publisher drains acks."""
    confirm_timeout: PositiveFloat = 30.0
    connect_timeout: PositiveFloat = 10.0
    heartbeat: int = 30
