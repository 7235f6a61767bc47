"""Events over the real Kafka: what the issue's "done when" asks, outcome by outcome."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from interchange.testing import Recorder, wait_until
from tests.faults.consumer_worker import ParcelWeighed  # its kill test's worker handles it too

pytestmark = pytest.mark.kafka

ROUTE = {"it.kafka.parcel_weighed": {"partition_key": "parcel"}}


def _events(count: int, keys: int = 10, first: int = 0) -> list[ParcelWeighed]:
    return [ParcelWeighed(parcel=f"p{i % keys}", seq=i) for i in range(first, first + count)]


def _in_key_order(received: list[ParcelWeighed]) -> bool:
    last: dict[str, int] = {}
    for event in received:
        if event.seq <= last.get(event.parcel, -1):
            return False
        last[event.parcel] = event.seq
    return True


def _servers(kafka_url: str) -> str:
    return kafka_url.removeprefix("kafka://").split("?")[0]


def test_two_groups_and_a_late_group_each_read_all_1000_events_in_key_order(kafka_bus):
    bus = kafka_bus(routes=ROUTE)
    billing, tracking = Recorder(), Recorder()
    bus.subscribes(ParcelWeighed, group="billing")(billing)
    bus.subscribes(ParcelWeighed, group="tracking", concurrency=2)(tracking)
    with bus:
        bus.publish_many(_events(1000))
        billing.wait_for(1000, timeout=90)
        tracking.wait_for(1000, timeout=90)
    late_bus = kafka_bus(routes=ROUTE)
    audit = Recorder()
    late_bus.subscribes(ParcelWeighed, group="audit", start="earliest")(audit)
    with late_bus:
        audit.wait_for(1000, timeout=90)
    for seen in (billing, tracking, audit):
        assert sorted(e.seq for e in seen.contracts) == list(range(1000))
        assert _in_key_order(seen.contracts)
    keys = {ctx.envelope.partition_key for ctx in billing.contexts}
    assert keys == {f"p{i}" for i in range(10)}


def test_replay_since_a_midpoint_returns_only_the_later_events_and_moves_no_group(kafka_bus):
    bus = kafka_bus(routes=ROUTE)
    bus.publish_many(_events(300))
    midpoint = datetime.now(UTC)
    time.sleep(0.005)  # Kafka stamps milliseconds: step past the midpoint, not a result wait
    bus.publish_many(_events(300, first=300))
    later = list(bus.replay(ParcelWeighed, since=midpoint))
    assert sorted(e.seq for e in later) == list(range(300, 600))
    assert _in_key_order(later)
    assert len(list(bus.replay(ParcelWeighed, until=midpoint))) == 300
    everyone = Recorder()
    bus.subscribes(ParcelWeighed, group="after-replay")(everyone)
    with bus:
        assert len(everyone.wait_for(600, timeout=60)) == 600


def test_seek_makes_a_group_read_again(kafka_bus):
    bus = kafka_bus(routes=ROUTE)
    seen = Recorder()
    bus.subscribes(ParcelWeighed, group="billing")(seen)
    bus.publish_many(_events(20))
    with bus:
        seen.wait_for(20, timeout=60)
    bus.seek(ParcelWeighed, "billing", to="earliest")
    with bus:
        seen.wait_for(40, timeout=60)
    assert sorted(e.seq for e in seen.contracts) == sorted(list(range(20)) * 2)


def test_a_poison_record_is_dead_lettered_and_the_following_events_are_handled(
    kafka_bus, kafka_url
):
    from confluent_kafka import Producer

    bus = kafka_bus(routes=ROUTE)
    seen, dead = Recorder(), []
    bus.subscribes(ParcelWeighed, group="billing")(seen)
    bus.handles_dead_letters(ParcelWeighed, group="billing")(dead.append)
    topic = bus.topic_of(ParcelWeighed)
    bus.publish(ParcelWeighed(parcel="p1", seq=0))
    producer = Producer({"bootstrap.servers": _servers(kafka_url)})
    producer.produce(
        topic,
        value=b'{"parcel": "p1", "seq": ',
        key=b"p1",
        headers={
            "ce_id": b"poison-1",
            "ce_source": b"raw",
            "ce_specversion": b"1.0",
            "ce_type": b"it.kafka.parcel_weighed",
            "ce_dataversion": b"1",
        },
    )
    assert producer.flush(30) == 0
    bus.publish_many(_events(5, keys=1, first=1))
    with bus:
        seen.wait_for(6, timeout=60)
        wait_until(lambda: len(dead) == 1, 60)
    assert [e.seq for e in seen.contracts] == [0, 1, 2, 3, 4, 5]
    assert dead[0].reason.startswith("body is not valid JSON")
    assert dead[0].message.id == "poison-1"


def test_a_killed_consumer_is_replaced_its_events_come_again_and_effects_stay_single(
    kafka_url, redis_url, caplog
):
    import redis
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    from interchange import Bus, Settings

    prefix, group = f"kill-{uuid.uuid4().hex[:8]}.", "weighing"
    # a short session, so the group notices the killed member in seconds, not 45
    fast = f"{kafka_url}?session.timeout.ms=6000&heartbeat.interval.ms=500"
    effects = redis.Redis.from_url(redis_url)
    settings = Settings(
        backends={"commands": "memory://kill", "events": fast},
        routes=ROUTE,
        channel_prefix=prefix,
        dedupe=redis_url,
    )
    producer = Bus(settings)
    producer.publish_many(_events(300))
    worker = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "faults" / "consumer_worker.py"),
            "events",
            fast,
            redis_url,
            prefix,
            group,
        ],
    )
    try:
        wait_until(lambda: effects.llen(f"{prefix}effects") >= 100, 60)
    finally:
        worker.kill()  # SIGKILL: no commit, no goodbye to the group
        worker.wait(30)
    done_before_kill = effects.llen(f"{prefix}effects")
    topic = producer.topic_of(ParcelWeighed)
    admin = AdminClient({"bootstrap.servers": _servers(kafka_url)})
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = sum(
        max(tp.offset, 0) for tp in offsets[group].result().topic_partitions if tp.topic == topic
    )
    assert committed < done_before_kill, "some handled events must still be uncommitted"

    replacement = Bus(settings)
    replacement.subscribes(ParcelWeighed, group=group)(
        lambda evt, ctx: effects.rpush(f"{prefix}effects", evt.seq)
    )
    try:
        with caplog.at_level(logging.INFO, logger="interchange"), replacement:
            wait_until(lambda: effects.llen(f"{prefix}effects") >= 300, 90)
            redelivered = [r for r in caplog.records if "dropping duplicate" in r.getMessage()]
            wait_until(
                lambda: (
                    len(redelivered) > 0
                    or any("dropping duplicate" in r.getMessage() for r in caplog.records)
                ),
                30,
            )
    finally:
        replacement.close()
        producer.close()
    done = [int(x) for x in effects.lrange(f"{prefix}effects", 0, -1)]
    effects.delete(f"{prefix}effects")
    assert sorted(done) == list(range(300)), "every event's effect exactly once"


def test_kcat_reads_an_interchange_event_and_the_cloudevents_sdk_parses_it(kafka_bus, kafka_url):
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

    bus = kafka_bus(routes=ROUTE)
    sent = bus.publish(ParcelWeighed(parcel="p7", seq=42))
    out = subprocess.run(
        [
            "kcat",
            "-b",
            _servers(kafka_url),
            "-C",
            "-t",
            bus.topic_of(ParcelWeighed),
            "-o",
            "beginning",
            "-e",
            "-q",
            "-J",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    [record] = [json.loads(line) for line in out.splitlines() if line.strip()]
    headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
    assert headers["ce_id"] == sent
    assert headers["ce_type"] == "it.kafka.parcel_weighed"
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert record["key"] == "p7"
    event = from_binary_event(
        KafkaMessage(
            headers={k: v.encode() for k, v in headers.items()},
            key=record["key"],
            value=record["payload"].encode(),
        )
    )
    assert event.get_id() == sent
    assert event.get_type() == "it.kafka.parcel_weighed"
    assert event.get_source() == "interchange"
    assert event.get_data() == {"parcel": "p7", "seq": 42}


def test_an_event_produced_by_kcat_is_handled(kafka_bus, kafka_url):
    bus = kafka_bus(routes=ROUTE)
    seen = Recorder()
    bus.subscribes(ParcelWeighed, group="billing")(seen)
    topic = bus.topic_of(ParcelWeighed)
    with bus:
        subprocess.run(
            [
                "kcat",
                "-b",
                _servers(kafka_url),
                "-P",
                "-t",
                topic,
                "-k",
                "p3",
                "-H",
                "ce_id=from-kcat-1",
                "-H",
                "ce_source=legacy-scale",
                "-H",
                "ce_specversion=1.0",
                "-H",
                "ce_type=it.kafka.parcel_weighed",
                "-H",
                "content-type=application/json",
            ],
            input=json.dumps({"parcel": "p3", "seq": 9}),
            check=True,
            text=True,
            timeout=60,
        )
        assert seen.wait_for(1, timeout=60) == [ParcelWeighed(parcel="p3", seq=9)]
    envelope = seen.contexts[0].envelope
    assert (envelope.id, envelope.source) == ("from-kcat-1", "legacy-scale")


def test_keyed_workers_survive_a_rebalance_mid_stream_and_lose_nothing(kafka_bus, caplog):
    """A second member joins while the first has records in flight on its workers: the
    partitions it gives up are committed only up to what was done, nothing is lost, and each
    member handles its keys in order."""
    first_bus, second_bus = kafka_bus(routes=ROUTE), kafka_bus(routes=ROUTE)
    first, second = Recorder(), Recorder()

    def slowly(recorder):
        def handle(event, ctx):
            time.sleep(0.01)  # records stay in flight on the workers during the rebalance
            recorder(event, ctx)

        return handle

    first_bus.subscribes(ParcelWeighed, group="sorting", concurrency=4)(slowly(first))
    second_bus.subscribes(ParcelWeighed, group="sorting", concurrency=4)(slowly(second))
    with first_bus:
        first_bus.publish_many(_events(2000, keys=30))
        wait_until(lambda: len(first) >= 200, 60)
        with second_bus:  # joins: the group rebalances while the first member is busy
            wait_until(
                lambda: len({e.seq for e in first.contracts + second.contracts}) == 2000,
                120,
                message=lambda: f"{len({e.seq for e in first.contracts + second.contracts})}",
            )
    assert len(second) > 0, "the second member got partitions"
    for seen in (first, second):
        assert _in_key_order(_last_run(seen.contracts)), "each member keeps key order"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _last_run(received: list[ParcelWeighed]) -> list[ParcelWeighed]:
    """A member may handle a key's records again after getting its partition back (at least
    once): per key, only what it handled after its last step back."""
    kept: dict[str, list[ParcelWeighed]] = {}
    for event in received:
        run = kept.setdefault(event.parcel, [])
        if run and event.seq <= run[-1].seq:
            run.clear()
        run.append(event)
    return [event for run in kept.values() for event in run]


def test_a_static_member_handed_another_topics_partitions_says_so_and_reads_none_of_them(
    kafka_bus, kafka_url, caplog
):
    """One group and one group.instance.id reused for a second subscription: the coordinator
    gives the rejoining static member the first one's cached assignment. Its records are not
    handed to the second subscription's handler, and the error names the cause."""
    run = uuid.uuid4().hex[:8]
    static = f"?group.instance.id=it-static-{run}&session.timeout.ms=30000"
    group = f"shared-{run}"
    first = kafka_bus(backends={"events": kafka_url + static})
    seen_first = Recorder()
    first.subscribes(ParcelWeighed, group=group)(seen_first)
    first.start()
    first.publish(ParcelWeighed(parcel="p0", seq=1))
    seen_first.wait_for(1, timeout=60)
    first.stop()  # a static member leaves no group on close: its assignment stays cached
    # the same group (a group id carries the channel prefix, so the prefix stays) on a topic
    # of another name
    other_topic = {ParcelWeighed.contract_name: {"topic": f"other-{run}"}}
    second = kafka_bus(backends={"events": kafka_url + static}, routes=other_topic)
    assert second.topic_of(ParcelWeighed) != first.topic_of(ParcelWeighed)
    seen_second = Recorder()
    second.subscribes(ParcelWeighed, group=group)(seen_second)
    first.publish_many(_events(20))  # on the first topic, cached as this member's
    with caplog.at_level(logging.ERROR, "interchange.adapters.kafka"), second:
        wait_until(
            lambda: "does not subscribe to" in caplog.text,
            30,
            message="the stale static assignment was not reported",
        )
        time.sleep(1)  # what it would have handled by now, had it read the foreign partitions
    assert seen_second.contracts == []
    assert first.topic_of(ParcelWeighed) in caplog.text
