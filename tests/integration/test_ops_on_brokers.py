"""The ops port of a Bus on the real brokers: /metrics scraped while messages flow ends equal to
what was sent and handled; a primary that refuses shows as an open circuit and a degraded,
still ready, service."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.ops import serve_ops
from interchange.testing import wait_until
from tests.net import closed_port
from tests.scrape import metric_sum

COUNT = 2_000


class Parcel(Command, name="it.ops.parcel", version=1):
    n: int


class Weighed(Event, name="it.ops.weighed", version=1):
    n: int


_value = metric_sum


@pytest.mark.amqp
@pytest.mark.kafka
def test_metrics_scraped_during_load_end_equal_to_what_was_sent_and_handled(amqp_url, kafka_url):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": amqp_url, "events": kafka_url},
            channel_prefix=f"ops-{uuid.uuid4().hex[:8]}.",
        )
    )
    handled, lock = [0, 0], threading.Lock()

    def parcel(cmd):
        with lock:
            handled[0] += 1

    def weighed(evt):
        with lock:
            handled[1] += 1

    bus.handles(Parcel)(parcel)
    bus.subscribes(Weighed, group="scale")(weighed)
    queue, topic = bus.queue_of(Parcel), bus.topic_of(Weighed)
    ops = serve_ops(bus)
    scrapes: list[str] = []
    done = threading.Event()

    def scrape() -> None:  # a Prometheus that scrapes all along
        with httpx.Client(base_url=ops.url, timeout=10) as client:
            while not done.is_set():
                scrapes.append(client.get("/metrics").text)

    scraper = threading.Thread(target=scrape)
    try:
        with bus:
            scraper.start()
            for first in range(0, COUNT, 200):
                bus.send_many([Parcel(n=n) for n in range(first, first + 200)])
                bus.publish_many([Weighed(n=n) for n in range(first, first + 200)])
            wait_until(lambda: handled == [COUNT, COUNT], 120, message=lambda: f"{handled}")
            done.set()
            scraper.join(30)
            final = httpx.get(f"{ops.url}/metrics", timeout=10).text
    finally:
        done.set()
        ops.close()
        bus.close()
    assert len(scrapes) > 1, "scraped during the load"
    during = [_value(text, "interchange_sent_messages_total", channel=queue) for text in scrapes]
    assert during == sorted(during), "a counter never goes back"
    assert _value(final, "interchange_sent_messages_total", channel=queue) == COUNT
    assert _value(final, "interchange_published_messages_total", channel=topic) == COUNT
    assert _value(final, "interchange_handled_messages_total", channel=queue, group="") == COUNT
    assert (
        _value(final, "interchange_handled_messages_total", channel=topic, group="scale") == COUNT
    )
    assert _value(final, "interchange_handler_failures_total", channel=queue) == 0
    assert _value(final, "interchange_publish_duration_seconds_count", channel=topic) == COUNT / 200


@pytest.mark.redis
def test_a_refusing_primary_shows_as_an_open_circuit_and_a_degraded_ready_service(redis_url):
    bus = Bus(
        Settings.without_environment(
            backends={
                "commands": f"amqp://guest:guest@127.0.0.1:{closed_port()}//",
                "events": f"memory://{uuid.uuid4().hex}",
                "fallback": redis_url,
            },
            channel_prefix=f"ops-{uuid.uuid4().hex[:8]}.",
        )
    )
    ops = serve_ops(bus)
    try:
        with bus:
            bus.send(Parcel(n=1))  # refused: spooled, circuit open
            metrics = httpx.get(f"{ops.url}/metrics", timeout=10).text
            ready = httpx.get(f"{ops.url}/readyz", timeout=10)
    finally:
        ops.close()
        bus.close()
        import redis

        with redis.Redis.from_url(redis_url) as client:
            line = f"{bus.drainer.sides[0].namespace}send:{bus.queue_of(Parcel)}"
            client.delete(f"interchange:spool:{line}")
    assert _value(metrics, "interchange_failover_circuit_open", side="commands") == 1
    assert _value(metrics, "interchange_failover_circuit_open", side="events") == 0
    assert _value(metrics, "interchange_failover_spooled_total", side="commands") == 1
    assert _value(metrics, "interchange_sent_messages_total") == 1, "stored by the spool"
    assert ready.status_code == 200, ready.text
    assert ready.json()["degraded"] == ["commands"]
    assert ready.json()["backends"]["commands"]["up"] is False


@pytest.mark.kafka
@pytest.mark.parametrize("commands", ["amqp_url", "redis_url"])
def test_the_backlog_gauge_shows_what_waits_for_each_handler_and_falls_to_zero(
    commands, kafka_url, request
):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": request.getfixturevalue(commands), "events": kafka_url},
            channel_prefix=f"ops-{uuid.uuid4().hex[:8]}.",
        )
    )
    handled: list[int] = []
    bus.handles(Parcel)(lambda cmd: handled.append(cmd.n))
    bus.subscribes(Weighed, group="scale")(lambda evt: handled.append(evt.n))
    queue, topic = bus.queue_of(Parcel), bus.topic_of(Weighed)
    bus.send_many([Parcel(n=n) for n in range(30)])
    bus.publish_many([Weighed(n=n) for n in range(40)])
    ops = serve_ops(bus)

    def waiting(channel: str) -> float:
        text = httpx.get(f"{ops.url}/metrics", timeout=30).text
        return metric_sum(text, "interchange_backlog_messages", channel=channel)

    try:
        assert waiting(queue) == 30, "nothing consumed yet"
        assert waiting(topic) == 40, "the group committed nothing yet"
        with bus:
            wait_until(lambda: len(handled) == 70, 60)
            wait_until(lambda: waiting(queue) == 0, 30)
        # the group commits what it handled when it stops
        assert waiting(topic) == 0
    finally:
        ops.close()
        bus.close()


@pytest.mark.redis
def test_a_redis_broadcast_groups_backlog_is_what_waits_in_the_exchanges_stream(redis_url):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": redis_url, "events": f"memory://{uuid.uuid4().hex}"},
            channel_prefix=f"ops-{uuid.uuid4().hex[:8]}.",
        )
    )
    release, handled = threading.Event(), []

    @bus.handles(Parcel, group="audit")
    def audit(cmd):
        release.wait(30)
        handled.append(cmd.n)

    queue = bus.group_queue_of(Parcel, "audit")
    ops = serve_ops(bus)

    def waiting() -> float:
        text = httpx.get(f"{ops.url}/metrics", timeout=30).text
        return metric_sum(text, "interchange_backlog_messages", channel=queue)

    try:
        with bus:
            for n in range(20):
                bus.broadcast(Parcel(n=n))
            assert waiting() == 20, "one in the handler (pending), 19 not yet delivered"
            release.set()
            wait_until(lambda: len(handled) == 20, 30)
            wait_until(lambda: waiting() == 0, 30)
    finally:
        ops.close()
        bus.close()
