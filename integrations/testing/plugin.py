"""The Interchange pytest plugin, registered through the ``pytest11`` entry point, so any
project that installs Interchange gets these fixtures in its own CI (``pytest --fixtures``
shows each one's documentation):

``amqp_url``, ``kafka_url``, ``redis_url``, ``postgres_url`` (session)
    a real broker's URL: from the variables the Bus reads (``INTERCHANGE_BACKENDS__COMMANDS``,
    ``__EVENTS``, ``__FALLBACK``, ``INTERCHANGE_DEDUPE``: the first with that broker's scheme),
    else a testcontainers container when a Docker engine answers, else the test is skipped — or
    fails where brokers are required (``INTERCHANGE_REQUIRE_BROKERS=1``).
``interchange_backends``
    the backends the ``bus`` fixture uses; memory:// of the test's own by default.
``interchange_use_environment``
    False by default: ``INTERCHANGE_*`` variables never override what ``bus`` is given.
``bus``
    a Bus on those backends whose queues, exchanges and topics carry a prefix unique to the
    test, so tests never see each other's messages; closed after the test.

To test your application's own module-level bus with its handlers intact, use
``interchange.testing.isolated(app.bus)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from interchange.bus import Bus
from interchange.config import Settings
from interchange.testing.brokers import (
    KAFKA,
    POSTGRES,
    RABBITMQ,
    REDIS,
    remember_given,
    resolve,
)


def pytest_configure(config: pytest.Config) -> None:
    remember_given(config)


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> str:
    """A RabbitMQ for this session: an amqp:// URL of INTERCHANGE_BACKENDS__*, else a
    testcontainers container, else skipped (failed with INTERCHANGE_REQUIRE_BROKERS=1)."""
    return resolve(RABBITMQ, request)


@pytest.fixture(scope="session")
def kafka_url(request: pytest.FixtureRequest) -> str:
    """A Kafka for this session: a kafka:// URL of INTERCHANGE_BACKENDS__*, else a
    testcontainers container, else skipped (failed with INTERCHANGE_REQUIRE_BROKERS=1)."""
    return resolve(KAFKA, request)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis for this session: a redis:// URL of INTERCHANGE_BACKENDS__*, else a
    testcontainers container, else skipped (failed with INTERCHANGE_REQUIRE_BROKERS=1)."""
    return resolve(REDIS, request)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL for this session (the SQL connectors' tests): INTERCHANGE_POSTGRES_URL, else
    a testcontainers container, else skipped (failed with INTERCHANGE_REQUIRE_BROKERS=1)."""
    return resolve(POSTGRES, request)


@pytest.fixture
def interchange_backends() -> dict[str, str]:
    """The backends the ``bus`` fixture uses: a memory:// broker of this test's own. Override
    it in your conftest to run on real brokers, e.g.
    ``return {"commands": amqp_url, "events": kafka_url}``."""
    url = f"memory://test-{uuid.uuid4().hex[:12]}"
    return {"commands": url, "events": url}


@pytest.fixture
def interchange_use_environment() -> bool:
    """Whether ``INTERCHANGE_*`` environment variables may override the ``bus`` fixture's
    settings. False: a test gets what it asked for, whatever the shell exported. Override it
    to return True to let them."""
    return False


@pytest.fixture
def bus(interchange_backends: dict[str, str], interchange_use_environment: bool) -> Iterator[Bus]:
    """A Bus on ``interchange_backends`` whose channel names carry a prefix unique to this test
    (tests never see each other's messages), with fast retries; closed after the test."""
    values: dict[str, Any] = {
        "backends": interchange_backends,
        "channel_prefix": f"t-{uuid.uuid4().hex[:10]}.",
        "retry": {"max_attempts": 3, "initial_delay": 0.01},
    }
    make = Settings if interchange_use_environment else Settings.without_environment
    instance = Bus(make(**values))
    yield instance
    instance.close()
