"""Parametrizes every conformance test over the backends whose capabilities it needs.

A test says what it needs with ``@pytest.mark.requires("ordered_log", ...)`` (names of
Capabilities fields, or ``restart`` when it must restart the broker); it runs against every
backend declaring those capabilities and serving the side it uses (``commands`` or ``events``
fixture), and is simply not generated for the others.

``restart`` is a property of the test environment, not of the backend: where a backend's broker
cannot be restarted (it was not started by compose/native/up), the case is generated all the
same and skipped with the reason — or fails where brokers are required
(INTERCHANGE_REQUIRE_BROKERS=1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from interchange.adapters import CommandTransport, EventTransport
from interchange.testing.brokers import unavailable
from tests.conformance.backends import BACKENDS, Backend

ENVIRONMENT = {"restart"}
"""Needs the test environment meets, or not, whatever the backend can do."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): backend capabilities needed")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    needed = [n for m in metafunc.definition.iter_markers("requires") for n in m.args]
    sides = [side for side in ("commands", "events") if side in metafunc.fixturenames]
    chosen = [
        b
        for b in BACKENDS
        if all(getattr(b, side) for side in sides)
        and all(getattr(b.capabilities, n) for n in needed if n not in ENVIRONMENT)
    ]
    metafunc.parametrize("backend", chosen, ids=[b.name for b in chosen], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    needed = {n for m in request.node.iter_markers("requires") for n in m.args}
    if "restart" in needed and chosen.restart is None:
        unavailable(
            f"cannot restart the {chosen.name} broker here: only brokers that "
            "compose/native/up started for this run (INTERCHANGE_NATIVE_BROKERS=1) are restarted"
        )
    return chosen


@pytest.fixture
def url(backend: Backend, request: pytest.FixtureRequest) -> str:
    return backend.url(request)


@pytest.fixture
def names() -> Iterator[str]:
    """Channel names no other test uses: next(names) gives a fresh one."""
    run = uuid.uuid4().hex[:10]
    return (f"conf-{run}-{i}" for i in range(1_000_000))


@pytest.fixture
def opened(url: str) -> Iterator[list[CommandTransport | EventTransport]]:
    """Every transport a test opened, closed after it."""
    transports: list[CommandTransport | EventTransport] = []
    yield transports
    for transport in transports:
        transport.close()


def _opener(open_transport, url, opened):
    def make():
        transport = open_transport(url)
        opened.append(transport)
        return transport

    return make


@pytest.fixture
def another_commands(backend: Backend, url: str, opened) -> Callable[[], CommandTransport]:
    """Opens further command transports on the same broker (another process, in effect)."""
    return _opener(backend.open_commands, url, opened)


@pytest.fixture
def another_events(backend: Backend, url: str, opened) -> Callable[[], EventTransport]:
    return _opener(backend.open_events, url, opened)


@pytest.fixture
def commands(another_commands) -> CommandTransport:
    return another_commands()


@pytest.fixture
def events(another_events) -> EventTransport:
    return another_events()
