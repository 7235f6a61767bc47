"""Where the test suite's real brokers come from, in this order:

1. the variables a Bus itself reads (one scheme for services and tests):
   ``INTERCHANGE_BACKENDS__COMMANDS``, ``__EVENTS``, ``__FALLBACK`` and ``INTERCHANGE_DEDUPE``
   — the first of them whose URL has the broker's scheme, checked to accept a TCP connection;
2. otherwise, when a Docker engine answers, a container started with testcontainers for the
   whole session;
3. otherwise none: the test is skipped, saying how to provide the broker — and FAILS where
   brokers are required (``INTERCHANGE_REQUIRE_BROKERS=1``; this project's ``make test`` sets
   it), naming the missing broker. Such a run must never go green by skipping what matters.
   ``CI=true`` alone changes nothing: hosted CI sets it for every project, broker or not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from interchange.adapters import redact
from interchange.adapters.urls import endpoints

SETTINGS_VARIABLES = (
    "INTERCHANGE_BACKENDS__COMMANDS",
    "INTERCHANGE_BACKENDS__EVENTS",
    "INTERCHANGE_BACKENDS__FALLBACK",
    "INTERCHANGE_DEDUPE",
    "INTERCHANGE_POSTGRES_URL",
)
"""Where a Bus reads its backends from the environment, and the database the SQL connectors'
tests use (``INTERCHANGE_POSTGRES_URL``, not a Bus setting); the fixtures look there."""


@dataclass(frozen=True)
class Broker:
    name: str
    schemes: tuple[str, ...]
    env: str
    """The variable a user sets for this broker (the Bus's own: its usual side)."""
    start_container: Callable[[pytest.FixtureRequest], str]
    example: str

    def given(self, environment: Mapping[str, str]) -> tuple[str, str] | None:
        """(variable, URL) of the first settings variable naming this kind of broker."""
        for name in SETTINGS_VARIABLES:
            url = environment.get(name, "")
            if url.split("://", 1)[0] in self.schemes:
                return name, url
        return None


GIVEN = pytest.StashKey[Mapping[str, str]]()
"""The settings variables as the session found them (``remember_given``): broker fixtures
resolved late, inside a test that changed the environment, still see what the run was given."""


def remember_given(config: pytest.Config) -> None:
    config.stash[GIVEN] = {
        name: os.environ[name] for name in SETTINGS_VARIABLES if name in os.environ
    }


REQUIRE = "INTERCHANGE_REQUIRE_BROKERS"


def brokers_required() -> bool:
    """Whether this run must have its brokers (INTERCHANGE_REQUIRE_BROKERS=1)."""
    return os.environ.get(REQUIRE, "").strip().lower() in {"1", "true", "yes"}


def unavailable(message: str) -> None:
    """Skip; fail instead where brokers are required."""
    if brokers_required():
        pytest.fail(f"{message} ({REQUIRE}=1: a missing broker fails the run)", pytrace=False)
    pytest.skip(message)


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why no TCP connection to the URL's hosts could be opened, or None when one could."""
    problems = []
    for host, port in endpoints(url):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as error:
            problems.append(f"{host}:{port}: {error.strerror or error}")
    return "; ".join(problems) or "no host in the URL"


def docker_engine_available() -> bool:
    """Whether a Docker engine answers. The engine's socket is tried first with a socket of our
    own: docker-py leaks the socket of a failed connect, and a ResourceWarning is an error in
    suites that run with warnings as errors (ours does, and so may our users')."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(3)
                probe.connect(host.removeprefix("unix://"))
        elif host.startswith("tcp://"):
            address = urlsplit(host)
            with socket.create_connection((address.hostname, address.port or 2375), timeout=3):
                pass
    except OSError:
        return False
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
    except Exception:  # no permission, or no engine behind the socket
        return False
    try:
        client.ping()
    except Exception:
        return False
    finally:
        client.close()
    return True


def resolve(broker: Broker, request: pytest.FixtureRequest) -> str:
    given = broker.given(request.config.stash.get(GIVEN, os.environ))
    if given is not None:
        variable, url = given
        problem = unreachable(url)
        if problem:
            unavailable(f"{broker.name} is not reachable at {redact(url)} ({variable}): {problem}")
        return url
    if docker_engine_available():
        return broker.start_container(request)
    unavailable(
        f"no {broker.name} for this test: set {broker.env} to the URL of a {broker.name} "
        f"you run (e.g. {broker.example}), or make a Docker engine reachable and "
        "testcontainers starts one"
    )
    raise AssertionError("unreachable")  # unavailable() always raises


def _stop_at_end(request: pytest.FixtureRequest, container: object) -> None:
    request.addfinalizer(container.stop)  # type: ignore[attr-defined]


def rabbitmq_container(request: pytest.FixtureRequest) -> str:
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.13-management").start()
    _stop_at_end(request, container)
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5672)
    return f"amqp://{container.username}:{container.password}@{host}:{port}//"


def kafka_container(request: pytest.FixtureRequest) -> str:
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer().with_kraft().start()
    _stop_at_end(request, container)
    return f"kafka://{container.get_bootstrap_server()}"


def redis_container(request: pytest.FixtureRequest) -> str:
    from testcontainers.redis import RedisContainer

    container = RedisContainer("redis:7").start()
    _stop_at_end(request, container)
    return f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"


def postgres_container(request: pytest.FixtureRequest) -> str:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:15", driver=None).start()
    _stop_at_end(request, container)
    return str(container.get_connection_url())


RABBITMQ = Broker(
    "RabbitMQ",
    ("amqp", "amqps"),
    "INTERCHANGE_BACKENDS__COMMANDS",
    rabbitmq_container,
    "amqp://guest:guest@127.0.0.1:5672//",
)
KAFKA = Broker(
    "Kafka", ("kafka",), "INTERCHANGE_BACKENDS__EVENTS", kafka_container, "kafka://127.0.0.1:9092"
)
REDIS = Broker(
    "Redis",
    ("redis", "rediss"),
    "INTERCHANGE_BACKENDS__FALLBACK",
    redis_container,
    "redis://127.0.0.1:6379/0",
)
POSTGRES = Broker(
    "PostgreSQL",
    ("postgresql", "postgres", "postgresql+psycopg"),
    "INTERCHANGE_POSTGRES_URL",
    postgres_container,
    "postgresql://interchange:interchange@127.0.0.1:5432/interchange",
)
