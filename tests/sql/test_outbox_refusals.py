"""A row the broker refuses, on real PostgreSQL: counted, parked with its reason after
``max_attempts``, the relay goes on with the next rows, and no transaction is left open."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from interchange import Bus, Settings
from interchange.adapters import TransportMessage
from interchange.adapters.errors import ConfigurationError
from interchange.adapters.memory import MemoryEventTransport
from interchange.connectors.sql import OutboxRelay, add_to_outbox, create_outbox, engine_for
from interchange.connectors.sql.tables import dead_letter_table
from interchange.testing import wait_until
from tests.sql.conftest import drop_outbox
from tests.sql.test_outbox import OrderPlaced

TOO_LARGE = 1_200_000  # Kafka's limit is about 1 MB


@pytest.fixture
def tagged(postgres_url: str) -> Iterator[tuple[Engine, str, str]]:
    """(engine, table, application_name): every session of this test carries the name, so
    pg_stat_activity tells them from colleagues' sessions on the same database."""
    name = f"outbox-test-{uuid.uuid4().hex[:10]}"
    url = make_url(postgres_url).update_query_dict({"application_name": name})
    engine = engine_for(url.render_as_string(hide_password=False))
    table = f"outbox_{uuid.uuid4().hex[:10]}"
    create_outbox(engine, table)
    yield engine, table, name
    drop_outbox(engine, table)
    engine.dispose()


def _left_open(engine: Engine, name: str) -> list[str]:
    """Sessions of this test idle inside a transaction (from a connection of another name)."""
    watcher = engine_for(engine.url.set(query={}).render_as_string(hide_password=False))
    with watcher.connect() as c:
        rows = c.execute(
            text(
                "SELECT state, left(query, 80) FROM pg_stat_activity "
                "WHERE application_name = :name AND state LIKE 'idle in transaction%'"
            ),
            {"name": name},
        ).all()
    watcher.dispose()
    return [f"{state}: {query}" for state, query in rows]


def _add(engine: Engine, table: str, rows: list[tuple[str, str, int]]) -> None:
    with engine.begin() as connection:
        for order, aggregate, size in rows:
            add_to_outbox(
                connection,
                OrderPlaced(order=order + "x" * size, seq=len(order)),
                aggregate_type="order",
                aggregate_id=aggregate,
                table=table,
            )


def _attempts(engine: Engine, table: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT left(payload, 30), attempts FROM {table} WHERE sent_at IS NULL")
        ).all()
    return {payload: attempts for payload, attempts in rows}


@pytest.mark.kafka
def test_a_row_kafka_refuses_is_counted_parked_and_the_relay_goes_on(tagged, kafka_url):
    engine, table, name = tagged
    _add(engine, table, [("ok-1", "a", 0), ("big", "a", TOO_LARGE), ("ok-2", "a", 0)])
    _add(engine, table, [("other", "b", 0)])
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url},
            channel_prefix=f"refuse-{uuid.uuid4().hex[:8]}.",
        )
    )
    relay = OutboxRelay(bus, engine, table=table, max_attempts=2)
    try:
        assert relay.relay_once() == 2  # ok-1 and other; ok-2 waits behind big
        assert _left_open(engine, name) == []
        assert list(_attempts(engine, table).values()) == [1, 0], "big counted, ok-2 waiting"
        assert relay.relay_once() == 2  # big parked on its second attempt, then ok-2
        assert _left_open(engine, name) == []
        assert relay.pending() == 0
        received = [(e.order[:5], e.seq) for e in bus.replay(OrderPlaced)]  # type: ignore[attr-defined]
        assert [order for order, _ in received if order != "ok-1"] == ["other", "ok-2"]
        with engine.connect() as connection:
            [parked] = connection.execute(select(dead_letter_table(table))).all()
        assert parked.payload.startswith('{"order":"bigxxx')
        assert "refused 2 times" in parked.reason
        assert "MSG_SIZE_TOO_LARGE" in parked.reason
    finally:
        bus.close()


class Broken(MemoryEventTransport):
    """Raises what no error mapping foresaw, for the order named ``poison``."""

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        if any(b'"poison' in message.body for message in messages):
            raise RuntimeError("a driver error nobody mapped")
        super().publish_many(topic, messages)

    def publish(self, topic: str, message: TransportMessage) -> None:
        if b'"poison' in message.body:
            raise RuntimeError("a driver error nobody mapped")
        super().publish(topic, message)


@pytest.mark.parametrize("mode", ["round by round", "running"])
def test_an_unmapped_publish_error_leaves_no_transaction_open_and_is_parked(tagged, mode):
    engine, table, name = tagged
    _add(engine, table, [("poison", "a", 0), ("after", "a", 0), ("b", "b", 0)])
    bus = Bus(
        Settings(backends={"commands": "memory://", "events": "memory://"}),
        events=Broken(f"memory://{uuid.uuid4().hex}"),
    )
    relay = OutboxRelay(bus, engine, table=table, max_attempts=3, poll_interval=0.05)
    try:
        if mode == "running":
            relay.start()
            wait_until(lambda: relay.pending() == 0, 20, message="outbox drained")
            relay.stop()
        else:
            for _ in range(3):
                relay.relay_once()
                assert _left_open(engine, name) == []
        assert relay.pending() == 0
        assert _left_open(engine, name) == []
        received = [e.order for e in bus.replay(OrderPlaced)]  # type: ignore[attr-defined]
        assert received == ["b", "after"]
        with engine.connect() as connection:
            [parked] = connection.execute(select(dead_letter_table(table))).all()
        assert "RuntimeError: a driver error nobody mapped" in parked.reason
        assert parked.reason.startswith("refused 3 times")
        with engine.connect() as connection:
            attempts = connection.execute(
                text(f"SELECT attempts FROM {table} WHERE id = :id"), {"id": parked.outbox_id}
            ).scalar_one()
        assert attempts == 3, "the parked row's attempts agree with its reason"
    finally:
        relay.stop()
        bus.close()


class Misconfigured(MemoryEventTransport):
    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        raise ConfigurationError("no such option: acks=most")

    def publish(self, topic: str, message: TransportMessage) -> None:
        raise ConfigurationError("no such option: acks=most")


def test_a_configuration_error_parks_nothing_and_leaves_no_transaction_open(tagged):
    engine, table, name = tagged
    _add(engine, table, [("a", "a", 0), ("b", "b", 0)])
    bus = Bus(
        Settings(backends={"commands": "memory://", "events": "memory://"}),
        events=Misconfigured(f"memory://{uuid.uuid4().hex}"),
    )
    relay = OutboxRelay(bus, engine, table=table, max_attempts=1)
    try:
        for _ in range(2):
            with pytest.raises(ConfigurationError, match="acks=most"):
                relay.relay_once()
            assert _left_open(engine, name) == []
        assert list(_attempts(engine, table).values()) == [0, 0], "nothing counted"
        with engine.connect() as connection:
            assert connection.execute(select(dead_letter_table(table))).all() == []
    finally:
        bus.close()
