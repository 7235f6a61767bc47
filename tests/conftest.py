"""Shared fixtures. Broker fixtures for real brokers live in the shipped plugin."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from interchange import Bus, Settings
from interchange.testing import wait_until
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


@pytest.fixture
def serve() -> Iterator[Callable[[Any], httpx.Client]]:
    """``serve(app)`` runs the ASGI app under uvicorn and returns an httpx client for it."""
    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(app: Any) -> httpx.Client:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started, 10, message="uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15)
        running.append((server, thread, client))
        return client

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def spans() -> Iterator[Any]:
    """The spans this test finished (tests/spans.py): ``spans.named("send q")``."""
    from tests.spans import recording

    with recording() as recorder:
        yield recorder
