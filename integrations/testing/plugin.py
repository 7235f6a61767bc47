"""The Interchange pytest plugin, registered through the ``pytest11`` entry point, so any
project that installs Interchange gets these fixtures in its own CI:

``amqp_url``, ``kafka_url``, ``redis_url`` (session)
    a real broker's URL: from ``INTERCHANGE_*_URL``, else a testcontainers container when a
    Docker engine answers, else skip — or fail under ``CI=true``.
``interchange_backends``
    the backends the ``bus`` fixture uses; memory:// of the test's own by default. Override it
    in your conftest to run on real brokers, e.g.
    ``return {"commands": amqp_url, "events": kafka_url}``.
``bus``
    a Bus on those backends whose queues, exchanges and topics carry a prefix unique to the
    test, so tests never see each other's messages; closed after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from interchange.bus import Bus
from interchange.config import Settings
from interchange.testing.brokers import KAFKA, RABBITMQ, REDIS, resolve


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> str:
    return resolve(RABBITMQ, request)


@pytest.fixture(scope="session")
def kafka_url(request: pytest.FixtureRequest) -> str:
    return resolve(KAFKA, request)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    return resolve(REDIS, request)


@pytest.fixture
def interchange_backends() -> dict[str, str]:
    url = f"memory://test-{uuid.uuid4().hex[:12]}"
    return {"commands": url, "events": url}


@pytest.fixture
def bus(interchange_backends: dict[str, str]) -> Iterator[Bus]:
    settings = Settings(
        backends=interchange_backends,
        channel_prefix=f"t-{uuid.uuid4().hex[:10]}.",
        retry={"max_attempts": 3, "initial_delay": 0.01},
    )
    instance = Bus(settings)
    yield instance
    instance.close()
