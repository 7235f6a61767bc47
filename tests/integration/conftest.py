"""Buses on real brokers, each test with channel names of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations import Bus, Settings


@pytest.fixture
def amqp_bus(amqp_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses whose commands travel on the real RabbitMQ (two Buses = two services)."""
    prefix = f"it-{uuid.uuid4().hex[:10]}."
    events = f"memory://it-{uuid.uuid4().hex[:10]}"
    made: list[Bus] = []

    def make(**settings: Any) -> Bus:
        settings.setdefault("backends", {"commands": amqp_url, "events": events})
        settings.setdefault("retry", {"max_attempts": 3, "initial_delay": 0.05})
        settings.setdefault("channel_prefix", prefix)
        bus = Bus(Settings(**settings))
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def kafka_bus(kafka_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses whose events travel on the real Kafka, on topics of this test's own."""
    prefix = f"it-{uuid.uuid4().hex[:10]}."
    commands = f"memory://it-{uuid.uuid4().hex[:10]}"
    made: list[Bus] = []

    def make(**settings: Any) -> Bus:
        settings.setdefault("backends", {"commands": commands, "events": kafka_url})
        settings.setdefault("retry", {"max_attempts": 3, "initial_delay": 0.05})
        settings.setdefault("channel_prefix", prefix)
        bus = Bus(Settings(**settings))
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()
