"""Shared fixtures. Broker fixtures for real brokers live in the shipped plugin."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from interchange import Bus
from tests.buses import bus_factory


@pytest.fixture
def memory_url() -> str:
    """A memory broker of this test's own, so tests never see each other's messages."""
    return f"memory://test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bus(memory_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses on this test's broker (two Buses = two services); all closed afterwards."""
    with bus_factory(
        backends={"commands": memory_url, "events": memory_url},
        retry={"max_attempts": 3, "initial_delay": 0.01},
    ) as make:
        yield make
