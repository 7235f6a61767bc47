"""Redis-specific promises beyond the conformance suite."""

from __future__ import annotations

import uuid

import pytest

from interchange import Bus, InvalidRoute, Settings
from interchange.adapters import (
    ACK,
    ConfigurationError,
    TransportMessage,
    open_commands,
    open_events,
)
from interchange.contracts import Command
from interchange.testing import wait_until

pytestmark = pytest.mark.redis


def _messages(n, tag):
    return [TransportMessage(f"{tag}-{i}", b"x") for i in range(n)]


def test_trimming_never_deletes_what_a_group_has_not_finished(redis_url):
    topic = f"trim-{uuid.uuid4().hex[:8]}"
    events = open_events(f"{redis_url}?maxlen=10")
    try:
        events.publish_many(topic, _messages(5, "early"))
        # a group that takes the first entry and never acknowledges it
        events.client.xgroup_create(topic, "slow", id="0")
        events.client.xreadgroup("slow", "c1", {topic: ">"}, count=1)
        events.publish_many(topic, _messages(40, "late"))
        kept = [d.message.id for d in events.replay(topic)]
        assert kept[0] == "early-0", "the entry pending in group 'slow' must survive trimming"
        assert len(kept) == 45
        # once the group has acknowledged everything, the stream is trimmed to maxlen
        for entry_id, _ in events.client.xrange(topic):
            events.client.xack(topic, "slow", entry_id)
        events.client.xgroup_setid(topic, "slow", "$")
        events.publish_many(topic, _messages(1, "last"))
        kept = [d.message.id for d in events.replay(topic)]
        assert len(kept) == 10
        assert kept[-1] == "last-0"
    finally:
        events.client.delete(topic)
        events.close()


def test_a_partitioned_topic_is_trimmed_partition_by_partition(redis_url):
    topic = f"trim-{uuid.uuid4().hex[:8]}"
    events = open_events(f"{redis_url}?maxlen=5&retention_ms=3600000&partitions=4")
    streams = [topic, *(f"{topic}:{i}" for i in range(1, 4))]
    try:
        events.publish_many(topic, [TransportMessage("one", b"x", key="a")])  # one partition
        for n in range(10):
            keyed = [TransportMessage(f"{n}-{k}", b"x", key=k) for k in "abcdefgh"]
            events.publish_many(topic, keyed)
        lengths = [events.client.xlen(stream) for stream in streams]
        assert lengths == [5, 5, 5, 5]
        assert len(list(events.replay(topic))) == 20
    finally:
        events.client.delete(*streams)
        events.close()


def test_a_process_with_another_partition_count_than_the_topics_is_refused(redis_url):
    from interchange.adapters import InvalidURL

    topic = f"parts-{uuid.uuid4().hex[:8]}"
    four = open_events(f"{redis_url}?partitions=4")
    one = open_events(redis_url)
    try:
        four.publish(topic, TransportMessage("first", b"x", key="k"))
        with pytest.raises(InvalidURL, match="has 4 partitions on this Redis, this URL says"):
            one.publish(topic, TransportMessage("second", b"x", key="k"))
        with pytest.raises(InvalidURL, match="partitions=1"):
            one.subscribe(topic, "g", lambda d: ACK)
        assert [d.message.id for d in four.replay(topic)] == ["first"]
    finally:
        four.client.delete(f"interchange:partitions:{topic}")
        four.close()
        one.close()


def test_a_consumer_that_died_holding_a_command_is_replaced_after_claim_idle(redis_url):
    from interchange.adapters import open_commands

    queue = f"claim-{uuid.uuid4().hex[:8]}"
    commands = open_commands(f"{redis_url}?claim_idle=0.5")
    try:
        commands.declare(queue)
        commands.send(queue, TransportMessage("orphan", b"x"))
        # a consumer reads it and dies without acknowledging
        commands.client.xreadgroup(queue, "dead-consumer", {queue: ">"}, count=1)
        got = []
        commands.consume(queue, lambda d: got.append(d) or ACK)
        wait_until(lambda: len(got) == 1, 30)
        assert got[0].message.id == "orphan"
        assert got[0].attempt == 2, "the delivery to the dead consumer counts"
        wait_until(lambda: commands.client.xlen(queue) == 0, 10)
    finally:
        commands.client.delete(queue)
        commands.close()


class Sent(Command, name="it.redis.names.sent", version=1):
    n: int


class Told(Command, name="it.redis.names.told", version=1):
    n: int


def test_a_queue_named_like_an_exchanges_stream_is_refused_when_the_bus_is_built(redis_url):
    # exchange "shared" broadcasts to the stream "shared:broadcast": the queue would be it
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    routes = {
        Sent.contract_name: {"queue": f"{shared}:broadcast"},
        Told.contract_name: {"exchange": shared},
    }
    settings = Settings.without_environment(
        backends={"commands": redis_url, "events": f"memory://{uuid.uuid4().hex}"}, routes=routes
    )
    with pytest.raises(InvalidRoute, match=rf"queue = '{shared}:broadcast'.*exchange '{shared}'"):
        Bus(settings)


def test_a_send_to_a_queue_named_like_an_exchanges_stream_is_refused(redis_url):
    stream = f"shared-{uuid.uuid4().hex[:8]}:broadcast"
    commands = open_commands(redis_url)
    try:
        with pytest.raises(ConfigurationError, match="cannot end in ':broadcast'"):
            commands.send(stream, TransportMessage("m", b"x"))
        assert not commands.client.exists(stream)  # nothing appended, no group created
    finally:
        commands.close()
