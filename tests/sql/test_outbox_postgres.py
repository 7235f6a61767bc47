"""The outbox relay on PostgreSQL only: late commits, several relays, LISTEN/NOTIFY."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from interchange import Bus, Settings
from interchange.connectors.sql import OutboxRelay, add_to_outbox, create_outbox
from interchange.testing import wait_until
from tests.sql.test_outbox import OrderPlaced


def _bus() -> Bus:
    return Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"})
    )


def _published(bus: Bus) -> list[OrderPlaced]:
    return list(bus.replay(OrderPlaced))  # type: ignore[arg-type]


def test_a_row_committed_late_with_a_lower_id_is_published_after_those_committed_before(
    postgres,
):
    engine, table = postgres
    create_outbox(engine, table)
    bus = _bus()
    relay = OutboxRelay(bus, engine, table=table)
    slow = engine.connect()
    slow_tx = slow.begin()
    try:
        add_to_outbox(
            slow,
            OrderPlaced(order="o", seq=1),
            aggregate_type="order",
            aggregate_id="o",
            table=table,
        )  # takes the lower id, commits last
        with engine.begin() as fast:
            add_to_outbox(
                fast,
                OrderPlaced(order="o", seq=2),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        assert relay.relay_once() == 1, "committed first: not held back by a running writer"
        slow_tx.commit()
    finally:
        slow.close()
    assert relay.relay_once() == 1
    assert [e.seq for e in _published(bus)] == [2, 1], "commit order, not id order"
    bus.close()


def test_two_writers_that_committed_before_one_claim_are_published_in_commit_order(postgres):
    engine, table = postgres
    create_outbox(engine, table)
    bus = _bus()
    first, second = engine.connect(), engine.connect()
    try:
        for connection, seq in ((first, 1), (second, 2)):  # ids 1 and 2
            connection.begin()
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=seq),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        second.commit()  # both commit before the relay looks, id 2 first
        first.commit()
    finally:
        first.close()
        second.close()
    assert OutboxRelay(bus, engine, table=table).relay_once() == 2
    assert [e.seq for e in _published(bus)] == [2, 1]
    bus.close()


@pytest.mark.parametrize("mode", ["round by round", "running"])
def test_two_relays_share_the_table_and_keep_order_per_aggregate(postgres, mode):
    """Round by round: each round commits before the next. Running: ``start()``, whose rounds
    commit on a helper thread while the next round claims and publishes. Rows come in runs of
    30 per aggregate, so a batch of 50 holds few aggregates and the other relay's next batch
    has some of its own to publish (with every aggregate in every batch, the relay that
    claimed first held back all the other's rows: whether both took part was up to timing)."""
    engine, table = postgres
    create_outbox(engine, table)
    bus = _bus()
    with engine.begin() as connection:
        for n in range(2000):
            add_to_outbox(
                connection,
                OrderPlaced(order=f"a{n // 30 % 20}", seq=n),
                aggregate_type="order",
                aggregate_id=f"a{n // 30 % 20}",
                table=table,
            )
    relays = [OutboxRelay(bus, engine, table=table, batch=50, poll_interval=0.05) for _ in range(2)]
    rounds = [0, 0]

    def drain(index: int) -> None:
        deadline = time.monotonic() + 60
        while relays[index].pending() and time.monotonic() < deadline:
            if relays[index].relay_once():  # 0: the other relay holds every aggregate it read
                rounds[index] += 1

    if mode == "running":
        for relay in relays:
            relay.start()
        wait_until(lambda: relays[0].pending() == 0, timeout=60, message="outbox drained")
        for relay in relays:
            relay.stop()
        rounds = [relay.relayed for relay in relays]
        assert sum(rounds) == 2000
    else:
        threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    published = _published(bus)
    assert sorted(e.seq for e in published) == list(range(2000))  # each once
    for aggregate in range(20):
        mine = [e.seq for e in published if e.order == f"a{aggregate}"]
        assert mine == sorted(mine), f"a{aggregate} out of order"
    assert all(rounds), f"both relays took part: {rounds}"
    bus.close()


def test_an_insert_wakes_the_relay_before_its_poll_interval(postgres):
    engine, table = postgres
    create_outbox(engine, table)
    bus = _bus()
    relay = OutboxRelay(bus, engine, table=table, poll_interval=30).start()
    try:
        wait_until(lambda: relay._listener is not None, 10)  # listening
        started = time.monotonic()
        with engine.begin() as connection:
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=1),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        wait_until(lambda: len(_published(bus)) == 1, 10)
        assert time.monotonic() - started < 5, "woken by NOTIFY, not by the 30 s poll"
    finally:
        relay.stop()
    bus.close()


def test_a_notify_lost_while_the_listener_reconnects_is_made_up_by_polling(postgres):
    from sqlalchemy import text

    engine, table = postgres
    create_outbox(engine, table)
    bus = _bus()
    relay = OutboxRelay(bus, engine, table=table, poll_interval=0.5).start()
    try:
        wait_until(lambda: relay._listener is not None, 10)
        lost = relay._listener.driver_connection.info.backend_pid
        with engine.begin() as connection:  # the listener's connection dies
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost})
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=1),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        wait_until(lambda: len(_published(bus)) == 1, 10)
        wait_until(
            lambda: (
                relay._listener is not None
                and relay._listener.driver_connection.info.backend_pid != lost
            ),
            10,
        )  # and it listens again
    finally:
        relay.stop()
    bus.close()
