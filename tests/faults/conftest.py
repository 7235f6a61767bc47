"""Fault tests break real brokers on purpose; they need brokers this run may restart."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interchange.testing.brokers import unavailable
from tests.faults.toxics import Toxiproxy

NATIVE = Path(__file__).resolve().parents[2] / "compose" / "native"


@pytest.fixture
def restart_broker() -> Callable[[str], None]:
    """Restart a broker started by compose/native/up (keeps its data)."""
    if os.environ.get("INTERCHANGE_NATIVE_BROKERS") != "1":
        unavailable("fault tests restart brokers: run them through compose/with-brokers (native)")

    def restart(name: str) -> None:
        subprocess.run([NATIVE / "restart", name], check=True, timeout=120, capture_output=True)

    return restart


@pytest.fixture
def broker_ctl() -> Iterator[Callable[[str, str], None]]:
    """Stop and start brokers compose/native/up started; everything stopped is started again
    when the test ends, whatever happened."""
    if os.environ.get("INTERCHANGE_NATIVE_BROKERS") != "1":
        unavailable("fault tests stop brokers: run them through compose/with-brokers (native)")
    stopped: set[str] = set()

    def ctl(name: str, verb: str) -> None:
        subprocess.run([NATIVE / "ctl", name, verb], check=True, timeout=180, capture_output=True)
        (stopped.add if verb in ("stop", "kill") else stopped.discard)(name)

    yield ctl
    for name in stopped:
        subprocess.run(
            [NATIVE / "ctl", name, "start"], check=True, timeout=180, capture_output=True
        )


def _cluster(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if not url:
        unavailable(f"{what}: compose/native/up --clusters starts it and prints {variable}")
    return str(url)


@pytest.fixture
def kafka_cluster_url() -> str:
    """Three KRaft brokers (compose/native/up --kafka-brokers 3): node N is ctl kafka-node-N."""
    return _cluster("INTERCHANGE_KAFKA_CLUSTER_URL", "a three-broker Kafka cluster")


@pytest.fixture
def amqp_cluster_url() -> str:
    """Three RabbitMQ nodes (compose/native/up --rabbitmq-nodes 3) as one ';'-separated list of
    URLs: node N is ctl rabbitmq-node-N."""
    return _cluster("INTERCHANGE_AMQP_CLUSTER_URL", "a three-node RabbitMQ cluster")


@pytest.fixture
def toxiproxy() -> Iterator[Toxiproxy]:
    """toxiproxy, as compose/native/up starts it (INTERCHANGE_TOXIPROXY_URL), with no toxic
    before the test and none after it."""
    url = os.environ.get("INTERCHANGE_TOXIPROXY_URL")
    if not url:
        unavailable("network fault tests need toxiproxy: compose/native/up starts it")
    proxies = Toxiproxy(str(url))
    try:
        proxies.reset()
    except OSError as error:
        unavailable(f"toxiproxy at {url} does not answer: {error}")
    yield proxies
    proxies.reset()
