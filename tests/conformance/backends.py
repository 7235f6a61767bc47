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

from interchange.adapters import (
    Capabilities,
    CommandTransport,
    EventTransport,
    open_commands,
    open_events,
)
from interchange.adapters import memory as memory_adapter
from interchange.adapters.failover import FailoverCommandTransport, FailoverEventTransport


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
    refuses_late_replies: bool = True
    """``reply`` raises once the requester is gone (else the requester drops the reply)."""
    open_commands: Callable[[str], CommandTransport] = open_commands
    open_events: Callable[[str], EventTransport] = open_events


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


def _broker(name: str, adapter: str, fixture: str, native: str, **traits: bool) -> Backend:
    """A real broker: its adapter's capabilities, its URL from the session's broker fixture."""
    capabilities = importlib.import_module(f"interchange.adapters.{adapter}").CAPABILITIES
    return Backend(
        name,
        capabilities,
        lambda request: request.getfixturevalue(fixture),
        restart=_native_restart(native),
        **traits,
    )


def _behind_failover_commands(url: str) -> CommandTransport:
    return FailoverCommandTransport(open_commands(url), memory_adapter.MemorySpool(), cool_down=0)


def _behind_failover_events(url: str) -> EventTransport:
    return FailoverEventTransport(open_events(url), memory_adapter.MemorySpool(), cool_down=0)


BACKENDS = [
    Backend("memory", memory_adapter.CAPABILITIES, _memory_url, restart=_memory_restart),
    # The failover wrappers are transports too: the whole suite runs through them, on a memory
    # primary whose spool is in this process.
    Backend(
        "failover",
        memory_adapter.CAPABILITIES,
        _memory_url,
        restart=_memory_restart,
        open_commands=_behind_failover_commands,
        open_events=_behind_failover_events,
    ),
    _broker("amqp", "rabbitmq", "amqp_url", "rabbitmq", events=False, refuses_late_replies=False),
    _broker("kafka", "kafka", "kafka_url", "kafka", commands=False),
    _broker("redis", "redis", "redis_url", "redis"),
    # a topic as three partition streams, each read by one member of a group at a time
    Backend(
        "redis-partitioned",
        importlib.import_module("interchange.adapters.redis").CAPABILITIES,
        lambda request: request.getfixturevalue("redis_url") + "?partitions=3",
        commands=False,
        restart=_native_restart("redis"),
    ),
]
