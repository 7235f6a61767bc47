"""The backends the conformance suite runs against. A new backend is one entry here.

Each entry knows how to get a fresh URL for one test and, where the test environment can,
how to restart the broker behind it. The capabilities come from the adapter itself.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from interchange.adapters import Capabilities
from interchange.adapters import memory as memory_adapter


@dataclass(frozen=True)
class Backend:
    name: str
    capabilities: Capabilities
    url: Callable[[pytest.FixtureRequest], str]
    """A URL for one test; real brokers take it from the session's broker fixtures."""
    commands: bool = True
    events: bool = True
    restart: Callable[[str], None] | None = None
    """Restart the broker behind a URL, where the environment allows it."""


def _memory_url(request: pytest.FixtureRequest) -> str:
    return f"memory://conformance-{uuid.uuid4().hex[:12]}"


def _memory_restart(url: str) -> None:
    memory_adapter.MemoryBroker.for_url(url).restart()


NATIVE = Path(__file__).resolve().parents[2] / "compose" / "native"


def _native_restart(broker: str) -> Callable[[str], None] | None:
    """Brokers compose/native/up started for this run can be restarted by the tests."""
    if os.environ.get("INTERCHANGE_NATIVE_BROKERS") != "1":
        return None
    return lambda url: subprocess.run([NATIVE / "restart", broker], check=True, timeout=120)


def _broker(name: str, adapter: str, fixture: str, native: str, **sides: bool) -> Backend:
    """A real broker: its adapter's capabilities, its URL from the session's broker fixture."""
    capabilities = importlib.import_module(f"interchange.adapters.{adapter}").CAPABILITIES
    return Backend(
        name,
        capabilities,
        lambda request: request.getfixturevalue(fixture),
        restart=_native_restart(native),
        **sides,
    )


BACKENDS = [
    Backend("memory", memory_adapter.CAPABILITIES, _memory_url, restart=_memory_restart),
    _broker("amqp", "rabbitmq", "amqp_url", "rabbitmq", events=False),
    _broker("kafka", "kafka", "kafka_url", "kafka", commands=False),
    _broker("redis", "redis", "redis_url", "redis"),
]
