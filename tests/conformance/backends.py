"""The backends the conformance suite runs against. A new backend is one entry here.

Each entry knows how to get a fresh URL for one test and, where the test environment can,
how to restart the broker behind it. The capabilities come from the adapter itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from adapters import Capabilities
from adapters import memory as memory_adapter


@dataclass(frozen=True)
class Backend:
    name: str
    capabilities: Capabilities
    url: Callable[[pytest.FixtureRequest], str]
    """A URL for one test; real brokers take it from the session's broker fixtures."""
    restart: Callable[[str], None] | None = None
    """Restart the broker behind a URL, where the environment allows it."""


def _memory_url(request: pytest.FixtureRequest) -> str:
    return f"memory://conformance-{uuid.uuid4().hex[:12]}"


def _memory_restart(url: str) -> None:
    memory_adapter.MemoryBroker.for_url(url).restart()


BACKENDS = [
    Backend("memory", memory_adapter.CAPABILITIES, _memory_url, _memory_restart),
]
