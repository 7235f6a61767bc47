"""Primary brokers taken away mid-stream, with default settings: the Redis spool keeps every
message, no call waits a second before the spool takes over, the drain gives them back in
order, consumers handle each once. Both down: a clear error, in bounded time."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict

import pytest

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable
from interchange.contracts import Command, Event
from interchange.testing import wait_until


class Transfer(Command, name="fault.failover.transfer", version=1):
    n: int


class Reading(Event, name="fault.failover.reading", version=1):
    meter: str
    n: int


def _outage(broker_ctl, name: str, seconds: float) -> threading.Thread:
    def run() -> None:
        broker_ctl(name, "stop")
        time.sleep(seconds)  # the outage's length is the fault schedule, not a wait for a result
        broker_ctl(name, "start")

    return threading.Thread(target=run, name=f"outage-{name}")


SPOOLED_WITHIN = 1.0
"""Issue 14: a publishing call waits at most this long for a primary that refuses or has closed
its connections before the spool takes the message."""


def _stream_through(
    outage: threading.Thread, count: int, publish
) -> tuple[list[tuple[int, str]], list[tuple[float, int]]]:
    """Publish ``count`` messages, starting the outage at the fifth of them: (what raised, the
    five slowest calls as (seconds, n))."""
    raised, slowest = [], []
    for n in range(count):
        if n == count // 5:
            outage.start()
        started = time.monotonic()
        try:
            publish(n)
        except Exception as error:  # must not happen while the fallback is up
            raised.append((n, repr(error)))
        slowest = sorted([*slowest, (time.monotonic() - started, n)], reverse=True)[:5]
    outage.join(180)
    return raised, slowest


@pytest.mark.amqp
@pytest.mark.redis
def test_10000_commands_survive_a_rabbitmq_outage_each_handled_once(
    amqp_url, redis_url, broker_ctl
):
    prefix = f"fo-{uuid.uuid4().hex[:8]}."
    events = f"memory://{uuid.uuid4().hex}"
    producer = Bus(
        Settings(
            backends={
                "commands": amqp_url,
                "events": events,
                "fallback": redis_url,
                "cool_down": 0.5,
                "drain_interval": 0.2,
            },
            channel_prefix=prefix,
        )
    )
    consumer = Bus(
        Settings(backends={"commands": amqp_url, "events": events}, channel_prefix=prefix)
    )
    handled: list[int] = []
    lock = threading.Lock()

    @consumer.handles(Transfer)
    def transfer(cmd, ctx):
        with lock:
            handled.append(cmd.n)

    outage = _outage(broker_ctl, "rabbitmq", 4)
    try:
        with consumer, producer:
            raised, slowest = _stream_through(
                outage, 10_000, lambda n: producer.send(Transfer(n=n))
            )
            wait_until(
                lambda: len(set(handled)) == 10_000,
                180,
                message=lambda: f"handled {len(set(handled))} of 10000",
            )
            wait_until(lambda: producer.failover_status()["commands"]["spool_depth"] == 0, 60)
            status = producer.failover_status()["commands"]
    finally:
        consumer.close()
        producer.close()
    assert raised == [], f"no send may fail while the fallback is up: {raised[:3]}"
    assert slowest[0][0] < SPOOLED_WITHIN, f"slowest sends (s, n): {slowest}"
    assert sorted(handled) == list(range(10_000)), "each command handled exactly once"
    assert status["spooled"] > 0, "the outage must have sent some commands through the spool"
    assert status["drained"] >= status["spooled"]


@pytest.mark.kafka
@pytest.mark.redis
def test_10000_keyed_events_survive_a_kafka_outage_in_per_key_order(
    kafka_url, redis_url, broker_ctl
):
    prefix = f"fo-{uuid.uuid4().hex[:8]}."
    commands = f"memory://{uuid.uuid4().hex}"
    routes = {"fault.failover.reading": {"partition_key": "meter"}}
    producer = Bus(
        Settings(
            backends={
                "commands": commands,
                "events": kafka_url,
                "fallback": redis_url,
                "cool_down": 0.5,
                "drain_interval": 0.2,
            },
            channel_prefix=prefix,
            routes=routes,
        )
    )
    consumer = Bus(
        Settings(
            backends={"commands": commands, "events": kafka_url},
            channel_prefix=prefix,
            routes=routes,
        )
    )
    seen: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    @consumer.subscribes(Reading, group="billing")
    def bill(evt, ctx):
        with lock:
            seen[evt.meter].append(evt.n)

    producer.publish(Reading(meter="m0", n=-1))  # the topic exists before the consumer joins
    outage = _outage(broker_ctl, "kafka", 4)
    try:
        with consumer, producer:
            raised, slowest = _stream_through(
                outage, 10_000, lambda n: producer.publish(Reading(meter=f"m{n % 10}", n=n))
            )
            total = lambda: sum(len(set(v) - {-1}) for v in seen.values())  # noqa: E731
            wait_until(
                lambda: total() == 10_000, 240, message=lambda: f"received {total()} of 10000"
            )
            wait_until(lambda: producer.failover_status()["events"]["spool_depth"] == 0, 60)
            status = producer.failover_status()["events"]
    finally:
        consumer.close()
        producer.close()
    assert raised == [], f"no publish may fail while the fallback is up: {raised[:3]}"
    assert slowest[0][0] < SPOOLED_WITHIN, f"slowest publishes (s, n): {slowest}"
    assert status["spooled"] > 0, "the outage must have sent some events through the spool"
    for meter, ns in seen.items():
        firsts = list(dict.fromkeys(n for n in ns if n >= 0))
        assert firsts == sorted(firsts), f"per-key order broken for {meter}"
        assert len(ns) == len(set(ns)), f"{meter}: dedupe must keep each event single"


@pytest.mark.amqp
@pytest.mark.redis
def test_with_rabbitmq_and_redis_both_down_send_fails_fast_naming_both(
    amqp_url, redis_url, broker_ctl
):
    bus = Bus(
        Settings(
            backends={
                "commands": f"{amqp_url}?connect_timeout=1",
                "events": "memory://x",
                "fallback": redis_url,
                "fallback_timeout": 1,
            },
            channel_prefix=f"fo-{uuid.uuid4().hex[:8]}.",
        )
    )
    try:
        bus.send(Transfer(n=0))  # connected and declared while everything is up
        broker_ctl("rabbitmq", "stop")
        broker_ctl("redis", "stop")
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            bus.send(Transfer(n=1))
        elapsed = time.monotonic() - started
    finally:
        bus.close()
    message = str(caught.value)
    assert "neither the primary" in message
    assert "RabbitMQ" in message
    assert "fallback spool" in message
    assert "Redis" in message
    assert elapsed < 10, f"took {elapsed:.1f}s: the configured timeouts bound the wait"
