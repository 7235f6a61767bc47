"""Configuration names several nodes of a broker; the Bus uses the next when one refuses — also
under failover, whose publishers try each node once before the spool takes a message."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.testing import Recorder
from tests.net import closed_port


class Ping(Command, name="it.nodes.ping", version=1):
    n: int


class Pinged(Event, name="it.nodes.pinged", version=1):
    n: int


def _bus(side: str, urls: str, redis_url: str) -> Bus:
    other = "events" if side == "commands" else "commands"
    return Bus(
        Settings(
            backends={side: urls, other: f"memory://{uuid.uuid4().hex}", "fallback": redis_url},
            channel_prefix=f"nodes-{uuid.uuid4().hex[:8]}.",
        )
    )


@pytest.mark.amqp
@pytest.mark.redis
def test_a_list_of_amqp_urls_moves_on_from_a_node_that_refuses(amqp_url, redis_url):
    parts = urlsplit(amqp_url)
    down = amqp_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{closed_port()}")
    bus = _bus("commands", f"{down};{amqp_url}", redis_url)
    seen = Recorder()
    bus.handles(Ping)(seen)
    with bus:
        for n in range(3):
            bus.send(Ping(n=n))
        assert [p.n for p in seen.wait_for(3, timeout=30)] == [0, 1, 2]
        status = bus.failover_status()["commands"]
    bus.close()
    assert status["spooled"] == 0, "the live node took them: nothing went to the spool"
    assert status["circuit"] == "closed"


@pytest.mark.kafka
@pytest.mark.redis
def test_a_kafka_bootstrap_list_moves_on_from_a_broker_that_refuses(kafka_url, redis_url):
    live = urlsplit(kafka_url).netloc
    bus = _bus("events", f"kafka://127.0.0.1:{closed_port()},{live}", redis_url)
    seen = Recorder()
    bus.subscribes(Pinged, group="nodes")(seen)
    with bus:
        for n in range(3):
            bus.publish(Pinged(n=n))
        assert sorted(p.n for p in seen.wait_for(3, timeout=60)) == [0, 1, 2]
        status = bus.failover_status()["events"]
    bus.close()
    assert status["spooled"] == 0, "the live broker took them: nothing went to the spool"
