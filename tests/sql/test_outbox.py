"""The outbox relay on SQLite and PostgreSQL: in order, only what committed, bad rows parked
with their reason, nothing marked sent that no backend stored."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import insert, select, text

from interchange import Bus, Event, Settings
from interchange.adapters import BackendUnavailable, PublishRejected, TransportMessage
from interchange.adapters.memory import MemoryEventTransport
from interchange.connectors.sql import OutboxRelay, add_to_outbox, create_outbox, outbox_table
from interchange.connectors.sql.tables import dead_letter_table
from interchange.testing import Recorder


class OrderPlaced(Event, name="sql.order_placed", version=1):
    order: str
    seq: int


def _bus(**events) -> Bus:
    return Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"}),
        **events,
    )


def _received(bus: Bus) -> list[OrderPlaced]:
    return [e for e in (d for d in bus.replay(OrderPlaced))]  # type: ignore[misc]


def test_rows_committed_with_the_business_change_are_published_in_order_once(database):
    engine, table = database
    create_outbox(engine, table)
    bus = _bus()
    with engine.begin() as connection:
        for n in range(5):
            add_to_outbox(
                connection,
                OrderPlaced(order=f"o{n % 2}", seq=n),
                aggregate_type="order",
                aggregate_id=f"o{n % 2}",
                table=table,
            )
    relay = OutboxRelay(bus, engine, table=table)
    assert relay.relay_once() == 5
    assert relay.relay_once() == 0  # marked sent: not again
    assert [e.seq for e in _received(bus)] == [0, 1, 2, 3, 4]
    keys = [d.message.key for d in bus.events.replay(bus.topic_of(OrderPlaced))]
    assert keys == ["o0", "o1", "o0", "o1", "o0"]  # the aggregate is the partition key
    assert relay.pending() == 0
    bus.close()


def test_a_rolled_back_transaction_is_never_published(database):
    engine, table = database
    create_outbox(engine, table)
    bus = _bus()

    def place_then_fail() -> None:
        with engine.begin() as connection:
            add_to_outbox(
                connection,
                OrderPlaced(order="x", seq=1),
                aggregate_type="order",
                aggregate_id="x",
                table=table,
            )
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        place_then_fail()
    assert OutboxRelay(bus, engine, table=table).relay_once() == 0
    assert _received(bus) == []
    bus.close()


def test_a_row_written_with_plain_sql_gets_an_id_from_its_row(database):
    engine, table = database
    create_outbox(engine, table)
    bus = _bus()
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO {table} (aggregate_type, aggregate_id, contract, version, payload)"
                " VALUES ('order', 'o9', 'sql.order_placed', 1, '{\"order\": \"o9\", \"seq\": 9}')"
            )
        )
    OutboxRelay(bus, engine, table=table).relay_once()
    [delivery] = list(bus.events.replay(bus.topic_of(OrderPlaced)))
    assert delivery.message.id.startswith(f"{table}-")
    bus.close()


def test_bad_payloads_and_unknown_contracts_are_dead_lettered_with_the_reason(database):
    engine, table = database
    create_outbox(engine, table)
    bus = _bus()
    rows = [
        ("sql.order_placed", 1, '{"order": "a", "seq": 1}'),
        ("sql.order_placed", 1, '{"order": "b", "seq": "not a number"}'),
        ("sql.no_such_thing", 1, "{}"),
        ("sql.order_placed", 1, "not json"),
        ("sql.order_placed", 1, '{"order": "c", "seq": 3}'),
    ]
    with engine.begin() as connection:
        for contract, version, payload in rows:
            connection.execute(
                insert(outbox_table(table)).values(
                    aggregate_type="order",
                    aggregate_id="agg",
                    contract=contract,
                    version=version,
                    payload=payload,
                )
            )
    assert OutboxRelay(bus, engine, table=table).relay_once() == 5
    assert [e.order for e in _received(bus)] == ["a", "c"]
    with engine.connect() as connection:
        dead = connection.execute(select(dead_letter_table(table)).order_by(text("id"))).all()
    assert [row.contract for row in dead] == [
        "sql.order_placed",
        "sql.no_such_thing",
        "sql.order_placed",
    ]
    assert "seq" in dead[0].reason
    assert "ValidationError" in dead[0].reason
    assert "unknown contract type 'sql.no_such_thing'" in dead[1].reason
    assert "Invalid JSON" in dead[2].reason or "json" in dead[2].reason.lower()
    bus.close()


class Refusing(MemoryEventTransport):
    """Refuses messages whose body names a refused order; down while ``down`` is set."""

    def __init__(self, url: str, refused: set[str]) -> None:
        super().__init__(url)
        self.refused, self.down = refused, threading.Event()

    def _check(self, message: TransportMessage) -> None:
        if self.down.is_set():
            raise BackendUnavailable("events backend down")
        if any(f'"{order}"'.encode() in message.body for order in self.refused):
            raise PublishRejected("message too large", failed=[message.id])

    def publish(self, topic: str, message: TransportMessage) -> None:
        self._check(message)
        super().publish(topic, message)

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        for message in messages:
            self._check(message)
        super().publish_many(topic, messages)


def test_a_refused_row_holds_its_aggregate_then_is_parked_after_its_attempts(database):
    engine, table = database
    create_outbox(engine, table)
    events = Refusing(f"memory://{uuid.uuid4().hex}", {"bad"})
    bus = _bus(events=events)
    with engine.begin() as connection:
        for n, (order, aggregate) in enumerate(
            [("ok-1", "a"), ("bad", "a"), ("ok-2", "a"), ("other", "b")]
        ):
            add_to_outbox(
                connection,
                OrderPlaced(order=order, seq=n),
                aggregate_type="order",
                aggregate_id=aggregate,
                table=table,
            )
    relay = OutboxRelay(bus, engine, table=table, max_attempts=3)
    assert relay.relay_once() == 2  # ok-1 and other; ok-2 waits behind bad
    assert [e.order for e in _received(bus)] == ["ok-1", "other"]
    assert relay.relay_once() == 0  # bad's second attempt; ok-2 still waits
    assert relay.relay_once() == 2  # bad parked after its third attempt, then ok-2
    assert [e.order for e in _received(bus)] == ["ok-1", "other", "ok-2"]
    with engine.connect() as connection:
        [parked] = connection.execute(select(dead_letter_table(table))).all()
    assert "refused 3 times" in parked.reason
    assert "message too large" in parked.reason
    bus.close()


def test_while_every_backend_is_down_nothing_is_marked_and_no_attempt_counts(database):
    engine, table = database
    create_outbox(engine, table)
    events = Refusing(f"memory://{uuid.uuid4().hex}", set())
    bus = _bus(events=events)
    with engine.begin() as connection:
        for n in range(3):
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=n),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
    relay = OutboxRelay(bus, engine, table=table, max_attempts=1)
    events.down.set()
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            relay.relay_once()
    assert relay.pending() == 3
    events.down.clear()
    assert relay.relay_once() == 3
    assert [e.seq for e in _received(bus)] == [0, 1, 2]
    bus.close()


def test_the_relay_thread_publishes_what_is_added_while_it_runs(database):
    engine, table = database
    create_outbox(engine, table)
    bus = _bus()
    seen = Recorder()
    bus.subscribes(OrderPlaced, group="billing")(seen)
    relay = OutboxRelay(bus, engine, table=table, poll_interval=0.2).start()
    try:
        with bus:
            for n in range(20):
                with engine.begin() as connection:
                    add_to_outbox(
                        connection,
                        OrderPlaced(order="o", seq=n),
                        aggregate_type="order",
                        aggregate_id="o",
                        table=table,
                    )
            assert [e.seq for e in seen.wait_for(20, timeout=20)] == list(range(20))
    finally:
        relay.stop()
    bus.close()
