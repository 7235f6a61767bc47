"""Shared fixtures. Broker fixtures for real brokers live in the shipped plugin."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integrations import Bus, Settings


@pytest.fixture
def memory_url() -> str:
    """A memory broker of this test's own, so tests never see each other's messages."""
    return f"memory://test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bus(memory_url: str) -> Iterator[Callable[..., Bus]]:
    """Build Buses on this test's broker (two Buses = two services); all closed afterwards."""
    made: list[Bus] = []

    def make(**settings: Any) -> Bus:
        settings.setdefault("backends", {"commands": memory_url, "events": memory_url})
        settings.setdefault("retry", {"max_attempts": 3, "initial_delay": 0.01})
        bus = Bus(Settings(**settings))
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()
