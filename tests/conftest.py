"""Shared fixtures. Broker fixtures for real brokers live in the shipped plugin."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from interchange import Bus, Settings
from tests.buses import bus_factory

_SETTINGS_VARIABLES = (
    *(f"INTERCHANGE_{name.upper()}" for name in Settings.model_fields),
    "INTERCHANGE_CONFIG_FILE",
)


@pytest.fixture(autouse=True)
def _settings_from_code_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make test`` exports the brokers the way a Bus reads them (INTERCHANGE_BACKENDS__...);
    the broker fixtures (session-wide, resolved before this) take them from there. Each test
    then builds its Buses from what it says alone, subprocesses included."""
    import os

    for name in list(os.environ):
        if name.startswith(_SETTINGS_VARIABLES):
            monkeypatch.delenv(name)


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
