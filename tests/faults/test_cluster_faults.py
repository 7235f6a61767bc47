"""Clusters losing a node mid-stream: three KRaft brokers with topics replicated three ways
(``min.insync.replicas=2``), three RabbitMQ nodes with a quorum queue. The brokers' own
replication carries the stream; Interchange's part is to follow the new leader, keep per-key
order, and never report a message stored that a majority did not take.

Set INTERCHANGE_FAULT_REPORT to a file to append each outcome as a JSON line (the README's
cluster table comes from such a run)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable
from interchange.adapters.urls import endpoints
from interchange.contracts import Command, Event
from interchange.testing import wait_until
from tests.faults.conftest import NATIVE

STREAM = 20_000
BATCH = 100


class Reading(Event, name="fault.cluster.reading", version=1):
    meter: str
    n: int


class Transfer(Command, name="fault.cluster.transfer", version=1):
    n: int


ROUTES = {"fault.cluster.reading": {"partition_key": "meter"}}


def _servers(url: str) -> str:
    return ",".join(f"{host}:{port}" for host, port in endpoints(url))


def _report(**outcome: object) -> None:
    if report := os.environ.get("INTERCHANGE_FAULT_REPORT"):
        with open(report, "a") as file:
            file.write(json.dumps(outcome) + "\n")


def _stream(count: int, publish_batch, fault) -> tuple[list[tuple[int, str]], float, float]:
    """Publish ``count`` messages in batches, starting ``fault`` on a thread at the quarter:
    (what raised, the slowest batch call in seconds, when the fault started)."""
    raised: list[tuple[int, str]] = []
    slowest, fault_at, thread = 0.0, 0.0, None
    for first in range(0, count, BATCH):
        if first == count // 4:
            fault_at = time.monotonic()
            thread = threading.Thread(target=fault, name="fault")
            thread.start()
        started = time.monotonic()
        try:
            publish_batch(range(first, first + BATCH))
        except Exception as error:  # must not happen: a majority and the spool are up
            raised.append((first, repr(error)))
        slowest = max(slowest, time.monotonic() - started)
    assert thread is not None
    thread.join(180)
    return raised, slowest, fault_at


@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.parametrize("verb", ["stop", "kill"])
@pytest.mark.timeout(300)
def test_the_leader_lost_mid_stream_of_20000_keyed_events_loses_none_and_keeps_key_order(
    kafka_cluster_url, redis_url, broker_ctl, verb
):
    prefix = f"cl-{uuid.uuid4().hex[:8]}."
    url = f"{kafka_cluster_url}?partitions=6"
    commands = f"memory://{uuid.uuid4().hex}"
    producer = Bus(
        Settings.without_environment(
            backends={"commands": commands, "events": url, "fallback": redis_url},
            channel_prefix=prefix,
            routes=ROUTES,
        )
    )
    consumer = Bus(
        Settings.without_environment(
            backends={"commands": commands, "events": url}, channel_prefix=prefix, routes=ROUTES
        )
    )
    seen: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    @consumer.subscribes(Reading, group="billing")
    def bill(evt, ctx):
        with lock:
            seen[evt.meter].append(evt.n)

    producer.publish(Reading(meter="m0", n=-1))  # the topic exists before anything else
    topic = producer.topic_of(Reading)
    admin = AdminClient({"bootstrap.servers": _servers(kafka_cluster_url)})
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    assert len(partitions) == 6
    assert all(len(p.replicas) == 3 for p in partitions.values()), "replicated three ways"
    config = admin.describe_configs([ConfigResource("topic", topic)])
    (described,) = config.values()
    assert described.result(30)["min.insync.replicas"].value == "2"
    leader = partitions[0].leader
    try:
        with consumer, producer:
            raised, slowest, fault_at = _stream(
                STREAM,
                lambda ns: producer.publish_many([Reading(meter=f"m{n % 50}", n=n) for n in ns]),
                lambda: broker_ctl(f"kafka-node-{leader}", verb),
            )
            total = lambda: sum(len(set(v) - {-1}) for v in seen.values())  # noqa: E731
            wait_until(
                lambda: total() == STREAM, 240, message=lambda: f"received {total()} of {STREAM}"
            )
            recovered_in = time.monotonic() - fault_at
            wait_until(lambda: producer.failover_status()["events"]["spool_depth"] == 0, 60)
            status = producer.failover_status()["events"]
            moved = admin.list_topics(topic, timeout=30).topics[topic].partitions[0].leader
    finally:
        consumer.close()
        producer.close()
    handled = [n for ns in seen.values() for n in ns if n >= 0]
    _report(
        fault=f"partition leader {'stopped' if verb == 'stop' else 'killed (-9)'}",
        backend="Kafka, 3 brokers",
        sent=STREAM,
        lost=STREAM - len(set(handled)),
        duplicate_effects=len(handled) - len(set(handled)),
        calls_raised=len(raised),
        spooled=status["spooled"],
        slowest_call=round(slowest, 2),
        all_handled_after=round(recovered_in, 1),
    )
    assert raised == [], f"no publish may fail while a majority is up: {raised[:3]}"
    assert moved != leader, "partition 0 must have a new leader"
    for meter, ns in seen.items():
        firsts = [n for n in ns if n >= 0]
        assert firsts == sorted(firsts), f"per-key order broken for {meter}"
        assert len(firsts) == len(set(firsts)), f"{meter}: dedupe must keep each event single"
        assert firsts == list(range(int(meter[1:]), STREAM, 50)), f"{meter}: lost events"


@pytest.mark.kafka
@pytest.mark.redis
def test_with_two_of_three_brokers_down_a_publish_never_succeeds_without_its_replicas(
    kafka_cluster_url, redis_url, broker_ctl
):
    prefix = f"cl-{uuid.uuid4().hex[:8]}."
    url = f"{kafka_cluster_url}?partitions=6&publish_timeout=4"
    commands = f"memory://{uuid.uuid4().hex}"
    alone = Bus(
        Settings.without_environment(
            backends={"commands": commands, "events": url}, channel_prefix=prefix, routes=ROUTES
        )
    )
    spooling = Bus(
        Settings.without_environment(
            backends={
                "commands": commands,
                "events": url,
                "fallback": redis_url,
                "drain_interval": 0.2,
            },
            channel_prefix=prefix,
            routes=ROUTES,
        )
    )
    consumer = Bus(
        Settings.without_environment(
            backends={"commands": commands, "events": url}, channel_prefix=prefix, routes=ROUTES
        )
    )
    seen: list[int] = []
    consumer.subscribes(Reading, group="audit")(lambda evt, ctx: seen.append(evt.n))
    try:
        alone.publish(Reading(meter="m0", n=0))  # the topic exists; node 1 is its survivor
        broker_ctl("kafka-node-2", "stop")
        broker_ctl("kafka-node-3", "stop")
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            alone.publish_many([Reading(meter=f"m{n}", n=n) for n in range(1, 7)])
        refused_after = time.monotonic() - started
        # with the fallback configured the same events go to the spool, not silently nowhere
        spooling.publish_many([Reading(meter=f"m{n}", n=n) for n in range(1, 7)])
        status = spooling.failover_status()["events"]
        assert status["spooled"] == 6, status
        assert status["circuit"] != "closed", status
        broker_ctl("kafka-node-2", "start")
        broker_ctl("kafka-node-3", "start")
        with consumer, spooling:
            wait_until(
                lambda: sorted(set(seen)) == list(range(7)),
                120,
                message=lambda: f"received {sorted(set(seen))}",
            )
    finally:
        consumer.close()
        spooling.close()
        alone.close()
    assert refused_after < 10, f"refused after {refused_after:.1f}s: within publish_timeout"


def _leader_of(queue: str) -> int:
    """The cluster node leading a quorum queue, asked of node 2 (node 1 may be down)."""
    out = subprocess.run(
        [NATIVE / "ctl", "rabbitmq-node-2", "leader", queue],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return int(out)


@pytest.mark.amqp
@pytest.mark.redis
@pytest.mark.parametrize("verb", ["stop", "kill"])
@pytest.mark.timeout(300)
def test_the_quorum_queue_leader_lost_mid_stream_of_20000_commands_loses_none(
    amqp_cluster_url, redis_url, broker_ctl, verb
):
    prefix = f"cl-{uuid.uuid4().hex[:8]}."
    url = f"{amqp_cluster_url}?queue_type=quorum"
    events = f"memory://{uuid.uuid4().hex}"
    producer = Bus(
        Settings.without_environment(
            backends={"commands": url, "events": events, "fallback": redis_url},
            channel_prefix=prefix,
        )
    )
    # two consumers share one dedupe store: a delivery unacked on the lost node comes back,
    # maybe to the other consumer, and must not be handled twice
    consumers = [
        Bus(
            Settings.without_environment(
                backends={"commands": url, "events": events},
                channel_prefix=prefix,
                dedupe=redis_url,
            )
        )
        for _ in range(2)
    ]
    handled: list[int] = []
    lock = threading.Lock()

    def transfer(cmd, ctx):
        with lock:
            handled.append(cmd.n)

    for consumer in consumers:
        consumer.handles(Transfer)(transfer)
    producer.send(Transfer(n=-1))  # the queue exists: its leader is the node first in the list
    queue = producer.queue_of(Transfer)
    leader = _leader_of(queue)
    try:
        with consumers[0], consumers[1], producer:
            raised, slowest, fault_at = _stream(
                STREAM,
                lambda ns: producer.send_many([Transfer(n=n) for n in ns]),
                lambda: broker_ctl(f"rabbitmq-node-{leader}", verb),
            )
            done = lambda: len(set(handled) - {-1})  # noqa: E731
            wait_until(
                lambda: done() == STREAM,
                180,
                message=lambda: (
                    f"handled {done()} of {STREAM}; missing "
                    f"{sorted(set(range(STREAM)) - set(handled))[:20]}; "
                    f"{producer.failover_status()['commands']}"
                ),
            )
            recovered_in = time.monotonic() - fault_at
            wait_until(lambda: producer.failover_status()["commands"]["spool_depth"] == 0, 60)
            status = producer.failover_status()["commands"]
            moved = _leader_of(queue)
    finally:
        for consumer in consumers:
            consumer.close()
        producer.close()
    ns = [n for n in handled if n >= 0]
    _report(
        fault=f"quorum queue leader {'stopped' if verb == 'stop' else 'killed (-9)'}",
        backend="RabbitMQ, 3 nodes",
        sent=STREAM,
        lost=STREAM - len(set(ns)),
        duplicate_effects=len(ns) - len(set(ns)),
        calls_raised=len(raised),
        spooled=status["spooled"],
        slowest_call=round(slowest, 2),
        all_handled_after=round(recovered_in, 1),
    )
    assert raised == [], f"no send may fail while a majority is up: {raised[:3]}"
    assert moved != leader, "the queue must have a new leader"
    assert set(ns) == set(range(STREAM)), "every command handled: nothing lost"
    # A delivery in a handler when its node goes away comes again, maybe to the other consumer
    # before the first recorded it in the shared dedupe store: at least once. Only those can
    # repeat, so at most what both consumers hold at once (prefetch 100 each).
    assert len(ns) - len(set(ns)) <= 200, f"{len(ns) - len(set(ns))} repeated effects"
