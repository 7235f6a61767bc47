"""The failover spool on a real Redis (and Kafka): a spooled message goes only to the primary it
was spooled for, a message that primary cannot take is never spooled or, refused on drain, is set
aside without holding the rest, and a Bus publishes behind a backlog another process spooled."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
import redis

from interchange import Bus, Settings
from interchange.adapters import PublishRejected, TransportMessage
from interchange.adapters.redis import RedisSpool
from interchange.contracts import Event
from interchange.ops import collect
from interchange.ops_measure import Measurer
from interchange.testing import wait_until
from tests.net import closed_port


class Tick(Event, name="spool.primaries.tick", version=1):
    n: int
    pad: str = ""


class Tock(Event, name="spool.primaries.tock", version=1):
    n: int


@pytest.fixture
def fallback(redis_url: str) -> Iterator[str]:
    """A Redis database of this test's own (other test runs share db 0), emptied afterwards."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{random.randint(1, 15)}"
    prefixes = (RedisSpool.PREFIX, RedisSpool.REFUSED, RedisSpool.CLAIM)
    client = redis.Redis.from_url(url)
    before = {key for p in prefixes for key in client.scan_iter(match=p + "*")}
    yield url
    # only the keys this test made: a colleague's run may use the same database
    made = [k for p in prefixes for k in client.scan_iter(match=p + "*") if k not in before]
    if made:
        client.delete(*made)
    client.close()


def _bus(events: str, fallback: str, prefix: str, **backends: object) -> Bus:
    settings = {"commands": "memory://", "events": events, "fallback": fallback, **backends}
    return Bus(Settings(backends=settings, channel_prefix=prefix))


def _events_side(bus: Bus) -> object:
    assert bus.drainer is not None
    return bus.drainer.sides[1]


@pytest.mark.redis
def test_a_bus_drains_only_what_was_spooled_for_its_own_primary(fallback):
    """Tester's t5: A's Kafka down, 3 events spooled; B (another primary, same fallback and
    prefix) must not drain them into its own; C (A's destination, other options) sees them."""
    prefix = f"sp-{uuid.uuid4().hex[:8]}."
    down = f"kafka://127.0.0.1:{closed_port()}"
    a = _bus(down, fallback, prefix, fallback_timeout=1)
    try:
        spooled = [a.publish(Tick(n=n)) for n in range(3)]
        assert a.failover_status()["events"]["spool_depth"] == 3
    finally:
        a.close()

    b = _bus(f"memory://{uuid.uuid4().hex}", fallback, prefix, drain_interval=0.05)
    got: list[str] = []

    @b.subscribes(Tick, group="other-env", start="earliest")
    def handle(event: Tick, ctx) -> None:
        got.append(ctx.envelope.id)

    with b:
        assert b.drainer is not None
        b.drainer.drain()
        b.drainer.drain()
        assert b.failover_status()["events"]["spool_depth"] == 0, "none of them is B's"
        mine = b.publish(Tick(n=99))  # B's own, direct: its handler works
        wait_until(lambda: mine in got, 10)
    assert got == [mine], "B received A's spooled events"

    # same destination as A, other options: the same primary, its spool is this Bus's
    c = _bus(f"{down}?publish_timeout=3", fallback, prefix, fallback_timeout=1)
    try:
        assert c.failover_status()["events"]["spool_depth"] == 3
        line = f"{_events_side(c).namespace}publish:{c.topic_of(Tick)}"
        spool = RedisSpool(fallback)
        assert [m.id for _, m in spool.head(line, 10)] == spooled
        spool.close()
    finally:
        c.close()


@pytest.mark.kafka
@pytest.mark.redis
def test_a_record_over_kafkas_client_limit_is_rejected_not_spooled_while_kafka_is_down(
    fallback,
):
    """Tester's t16: Kafka down, a 2 MB event (client limit 1 MB) must be the caller's
    PublishRejected, not a spooled entry the drain cannot deliver."""
    prefix = f"sp-{uuid.uuid4().hex[:8]}."
    bus = _bus(f"kafka://127.0.0.1:{closed_port()}", fallback, prefix, fallback_timeout=1)
    try:
        bus.publish(Tick(n=0))  # spooled: the circuit opens
        with pytest.raises(PublishRejected, match=r"more than the primary takes \(1000000\)"):
            bus.publish(Tick(n=1, pad="x" * 2_000_000))
        with pytest.raises(PublishRejected) as batch:
            bus.publish_many([Tick(n=2), Tick(n=3, pad="x" * 2_000_000), Tick(n=4)])
        assert len(batch.value.failed) == 3, "none of the batch was stored"
        bus.publish(Tick(n=5))
        assert bus.failover_status()["events"]["spool_depth"] == 2
    finally:
        bus.close()


@pytest.mark.kafka
@pytest.mark.redis
def test_a_spooled_entry_kafka_refuses_is_set_aside_and_the_drain_goes_on(kafka_url, fallback):
    """Tester's t16b: an entry Kafka refuses on drain (here over the client limit, as a topic's
    lower limit would be) held its topic's and every later topic's drain. Now it is moved to
    the refused stream with the reason, and the others are delivered in order."""
    prefix = f"sp-{uuid.uuid4().hex[:8]}."
    bus = _bus(kafka_url, fallback, prefix)
    side = _events_side(bus)
    spool = RedisSpool(fallback)
    tick, tock = bus.topic_of(Tick), bus.topic_of(Tock)
    assert tick < tock, "the stuck line is drained first"  # lines drain in name order
    big = TransportMessage(id=f"big-{uuid.uuid4().hex}", body=b"x" * 2_000_000)
    before, after = (TransportMessage(id=f"{n}-{uuid.uuid4().hex}", body=b"{}") for n in "ab")
    other = TransportMessage(id=f"c-{uuid.uuid4().hex}", body=b"{}")
    try:
        # spooled while Kafka was down, by a version that did not check sizes
        spool.append(f"{side.namespace}publish:{tick}", [before, big, after])
        spool.append(f"{side.namespace}publish:{tock}", [other])
        assert bus.drainer is not None
        assert bus.drainer.drain() == 3
        status = bus.failover_status()["events"]
        assert (status["spool_depth"], status["refused"], status["drained"]) == (0, 1, 3)
        gauges = {family.name: family.samples for family in collect(bus, Measurer())}
        assert gauges["interchange_failover_refused"][0].value == 1
        assert [d.message.id for d in bus.events.replay(tick)] == [before.id, after.id]
        assert [d.message.id for d in bus.events.replay(tock)] == [other.id]
        refused = spool.client.xrange(f"{RedisSpool.REFUSED}{side.namespace}publish:{tick}")
        assert len(refused) == 1
        assert b"too large" in refused[0][1][b"x-interchange-refused"].lower()
    finally:
        spool.close()
        bus.close()


@pytest.mark.redis
def test_a_bus_publishes_behind_a_backlog_another_process_spooled(fallback):
    """Tester's t16c: process A (its primary down) spooled k's events; process B, the same
    primary up, published k's next event directly, ahead of them. B now spools behind."""
    prefix = f"sp-{uuid.uuid4().hex[:8]}."
    primary = f"memory://{uuid.uuid4().hex}"
    a = _bus(primary, fallback, prefix, cool_down=60)
    b = _bus(primary, fallback, prefix, drain_interval=0.05)
    got: list[str] = []

    @b.subscribes(Tick, group="g", start="earliest")
    def handle(event: Tick, ctx) -> None:
        got.append(ctx.envelope.id)

    try:
        _events_side(a).circuit.failed()  # A's primary down: A spools k's events
        backlog = [a.publish(Tick(n=n)) for n in range(2)]
        assert a.failover_status()["events"]["spool_depth"] == 2
        mine = b.publish(Tick(n=3))  # B's primary up, before B's drainer ran
        with b:
            wait_until(lambda: len(got) == 3, 10)
        assert got == [*backlog, mine]
    finally:
        a.close()
        b.close()


@pytest.mark.redis
def test_a_bus_already_publishing_spools_behind_a_backlog_its_drain_round_saw(fallback):
    """B published to the destination before A's backlog appeared (its first-publish look saw
    none); its next drain round sees the backlog (another drainer holds it): B's next message
    is spooled behind it, not sent ahead."""
    prefix = f"sp-{uuid.uuid4().hex[:8]}."
    primary = f"memory://{uuid.uuid4().hex}"
    a = _bus(primary, fallback, prefix, cool_down=60)
    b = _bus(primary, fallback, prefix)
    line = f"{_events_side(b).namespace}publish:{b.topic_of(Tick)}"
    spool = RedisSpool(fallback)
    try:
        first = b.publish(Tick(n=0))  # direct: no backlog yet
        _events_side(a).circuit.failed()
        backlog = [a.publish(Tick(n=n)) for n in (1, 2)]
        assert spool.claim(line, "a-drainer", 30)  # A's drainer works the line meanwhile
        assert b.drainer is not None
        b.drainer.drain()
        later = b.publish(Tick(n=3))
        assert b.failover_status()["events"]["spooled"] == 1, "B sent it ahead of the backlog"
        spool.release(line, "a-drainer")
        b.drainer.drain()
        replayed = [d.message.id for d in b.events.replay(b.topic_of(Tick))]
        assert replayed == [first, *backlog, later]
    finally:
        spool.close()
        a.close()
        b.close()


@pytest.mark.redis
def test_health_counts_this_configurations_spool_apart_and_its_refused_entries(
    fallback, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from interchange.adapters.spool_names import namespace, primary_identity
    from interchange.cli import app

    primary, other = (f"memory://{uuid.uuid4().hex}" for _ in range(2))
    backends = {"commands": "memory://", "events": primary, "fallback": fallback}
    config = tmp_path / "interchange.toml"
    config.write_text("[backends]\n" + "".join(f'{k} = "{v}"\n' for k, v in backends.items()))
    ours = f"{namespace('events', primary_identity(primary))}publish:t-{uuid.uuid4().hex}"
    theirs = f"{namespace('events', primary_identity(other))}publish:t-{uuid.uuid4().hex}"
    spool = RedisSpool(fallback)
    message = [TransportMessage(id=f"m-{n}-{uuid.uuid4().hex}", body=b"{}") for n in range(3)]
    try:
        spool.append(ours, message[:2])
        spool.append(theirs, message[2:])
        spool.refuse(ours, spool.head(ours, 1), "too large for this topic")
        monkeypatch.setenv("COLUMNS", "300")
        result = CliRunner().invoke(app, ["health", "--config", str(config), "--timeout", "2"])
        assert "fallback spool: 1 message(s) for these primaries" in result.output, result.output
        assert "1 spooled message(s) refused by the primary" in result.output
    finally:
        spool.client.delete(RedisSpool.REFUSED + ours)
        spool.client.srem(RedisSpool.REFUSED_LINES, ours)
        spool.close()


@pytest.mark.kafka
@pytest.mark.redis
def test_interchange_drain_forwards_the_rest_and_names_what_was_refused(
    kafka_url, fallback, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from interchange.adapters.spool_names import namespace, primary_identity
    from interchange.cli import app

    backends = {"commands": "memory://", "events": kafka_url, "fallback": fallback}
    config = tmp_path / "interchange.toml"
    config.write_text("[backends]\n" + "".join(f'{k} = "{v}"\n' for k, v in backends.items()))
    line = f"{namespace('events', primary_identity(kafka_url))}publish:sp-{uuid.uuid4().hex}"
    spool = RedisSpool(fallback)
    big = TransportMessage(id=f"big-{uuid.uuid4().hex}", body=b"x" * 2_000_000)
    small = TransportMessage(id=f"s-{uuid.uuid4().hex}", body=b"{}")
    try:
        spool.append(line, [big, small])
        monkeypatch.setenv("COLUMNS", "300")
        result = CliRunner().invoke(app, ["drain", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "forwarded 1 message(s); 0 still in the spool" in result.output
        assert "1 spooled message(s) refused by the primary" in result.output
    finally:
        spool.client.delete(RedisSpool.REFUSED + line)
        spool.client.srem(RedisSpool.REFUSED_LINES, line)
        spool.close()
