"""Buses on real brokers, each test with channel names of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from interchange import Bus
from tests.buses import bus_factory


def _unique(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def amqp_bus(amqp_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses whose commands travel on the real RabbitMQ (two Buses = two services)."""
    with bus_factory(
        backends={"commands": amqp_url, "events": f"memory://{_unique('it')}"},
        retry={"max_attempts": 3, "initial_delay": 0.05},
        channel_prefix=f"{_unique('it')}.",
    ) as make:
        yield make


@pytest.fixture
def kafka_bus(kafka_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses whose events travel on the real Kafka, on topics of this test's own."""
    with bus_factory(
        backends={"commands": f"memory://{_unique('it')}", "events": kafka_url},
        retry={"max_attempts": 3, "initial_delay": 0.05},
        channel_prefix=f"{_unique('it')}.",
    ) as make:
        yield make
