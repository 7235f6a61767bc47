"""Commit order on real PostgreSQL: plain-SQL writers (psycopg, not our API) in threads, 1-4
rows per transaction, ids drawn early, commits seconds late, rollbacks, two relays at once,
one of them SIGKILLed mid-stream. Every committed row arrives; per aggregate in the order the
writing transactions committed (rows of one transaction in id order); nothing rolled back.

The true commit order is recorded by the writers themselves: as its last statement before
COMMIT each transaction increments a one-row counter of the test's own and logs the value
with its transaction id. The row lock that increment takes is held until the commit has
finished, so the next transaction gets the next value only after this one committed: the
logged values are exactly the commit order."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict

import psycopg
import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url

from interchange import Bus, Settings
from interchange.connectors.sql import (
    OutboxRelay,
    add_to_outbox,
    create_outbox,
    engine_for,
    outbox_order,
    outbox_table,
)
from interchange.connectors.sql.tables import dead_letter_table
from interchange.testing import wait_until
from tests.sql.test_outbox import OrderPlaced
from tests.sql.test_outbox_crash import ROOT

WRITERS = 8
TRANSACTIONS = 12  # per writer
AGGREGATES = ["a", "b", "c"]  # few: writers contend on each


def _write(url: str, table: str, writer: int, seed: int, errors: list[BaseException]) -> None:
    """One writer's transactions, each ending with the test's commit-order stamp."""
    rnd = random.Random(seed)
    try:
        with psycopg.connect(url) as db:
            for n in range(TRANSACTIONS):
                with db.cursor() as cur:
                    ids: list[int] = []
                    rows = rnd.randint(1, 4)
                    if rnd.random() < 0.4:  # draw the ids first, insert them later
                        cur.execute(
                            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                            "FROM generate_series(1, %s)",
                            (table, rows),
                        )
                        ids = [value for (value,) in cur.fetchall()]
                        time.sleep(rnd.uniform(0, 0.05))
                    for k in range(rows):
                        aggregate = rnd.choice(AGGREGATES)
                        payload = f'{{"order": "{aggregate}", "seq": {writer * 1000 + n}}}'
                        columns = "aggregate_type, aggregate_id, contract, version, payload"
                        values = "'order', %s, 'sql.order_placed', 1, %s"
                        if ids:
                            cur.execute(
                                f"INSERT INTO {table} (id, {columns}) VALUES (%s, {values})",
                                (ids[k], aggregate, payload),
                            )
                        else:
                            cur.execute(
                                f"INSERT INTO {table} ({columns}) VALUES ({values})",
                                (aggregate, payload),
                            )
                        if rnd.random() < 0.3:
                            time.sleep(rnd.uniform(0, 0.02))  # others insert meanwhile
                    if rnd.random() < 0.15:
                        db.rollback()  # nothing of it may be published
                        continue
                    if rnd.random() < 0.1:
                        time.sleep(rnd.uniform(1.0, 1.5))  # a late commit
                    cur.execute(f"UPDATE {table}_truth_counter SET last = last + 1 RETURNING last")
                    (order,) = cur.fetchone()  # type: ignore[misc]
                    cur.execute(
                        f"INSERT INTO {table}_truth VALUES (pg_current_xact_id()::text, %s)",
                        (order,),
                    )
                db.commit()
    except BaseException as error:  # reported by the test
        errors.append(error)


@pytest.mark.kafka
def test_concurrent_plain_sql_writers_are_published_in_commit_order(
    postgres, postgres_url, kafka_url
):
    engine, table = postgres
    create_outbox(engine, table)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {table}_truth_counter (last bigint NOT NULL)"))
        connection.execute(text(f"INSERT INTO {table}_truth_counter VALUES (0)"))
        connection.execute(text(f"CREATE TABLE {table}_truth (tx text, commit_order bigint)"))
    prefix = f"order-{uuid.uuid4().hex[:8]}."
    settings = Settings.without_environment(
        backends={"commands": "memory://", "events": kafka_url}, channel_prefix=prefix
    )
    bus = Bus(settings)
    relay = OutboxRelay(bus, engine, table=table, batch=20, poll_interval=0.05)
    errors: list[BaseException] = []
    writers = [
        threading.Thread(target=_write, args=(postgres_url, table, w, w + 7, errors))
        for w in range(WRITERS)
    ]
    try:
        relay.start()
        for writer in writers:
            writer.start()
        # a second relay in a process of its own, SIGKILLed after its third publish
        worker = [postgres_url, table, prefix, kafka_url, "3", "forever"]
        killed = subprocess.Popen(
            [sys.executable, "-m", "tests.sql.relay_worker", *worker],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in writers:
            writer.join(120)
        _, stderr = killed.communicate(timeout=60)
        assert not errors, errors
        wait_until(lambda: relay.pending() == 0, 60, message="outbox drained")
    finally:
        relay.stop()
    assert killed.returncode == -9, stderr  # it died mid-stream

    with engine.connect() as connection:
        committed = connection.execute(
            text(
                f"SELECT o.id, o.aggregate_id, t.commit_order FROM {table} o "
                f"JOIN {table}_truth t ON t.tx = o.tx::text"
            )
        ).all()
        stray = connection.execute(
            text(
                f"SELECT count(*) FROM {table} o LEFT JOIN {table}_truth t ON t.tx = o.tx::text "
                "WHERE t.tx IS NULL"
            )
        ).scalar_one()
        connection.execute(text(f"DROP TABLE {table}_truth_counter, {table}_truth"))
        connection.commit()
    assert stray == 0, "every committed row was written by a logged transaction"
    expected: dict[str, list[str]] = defaultdict(list)
    for row_id, aggregate, _ in sorted(committed, key=lambda r: (r.commit_order, r.id)):
        expected[aggregate].append(f"{table}-{row_id}")

    records = list(bus.events.replay(bus.topic_of(OrderPlaced)))
    bus.close()
    received: dict[str, list[str]] = defaultdict(list)
    for record in records:  # a consumer that dedupes keeps the first copy
        if record.message.id not in received[record.message.key or ""]:
            received[record.message.key or ""].append(record.message.id)
    assert sum(map(len, expected.values())) > 100, "enough rows to interleave"
    assert set(received) <= set(AGGREGATES)
    for aggregate in AGGREGATES:
        assert set(received[aggregate]) == set(expected[aggregate]), "every row, nothing else"
        assert received[aggregate] == expected[aggregate], f"{aggregate}: not in commit order"


def test_an_outbox_of_an_older_version_is_migrated_by_the_relay_its_rows_first(postgres):
    engine, table = postgres
    metadata = MetaData()  # the table as the version before commit order made it
    outbox_table(table, metadata)
    dead_letter_table(table, metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            text(f"ALTER TABLE {table} ADD tx xid8 NOT NULL DEFAULT pg_current_xact_id()")
        )
        for seq in (1, 2):
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=seq),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
    bus = Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"})
    )
    relay = OutboxRelay(bus, engine, table=table)
    first, second = engine.connect(), engine.connect()
    try:
        assert relay.relay_once() == 2  # migrated, then its rows in id order
        for connection, seq in ((first, 3), (second, 4)):
            connection.begin()
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=seq),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert relay.relay_once() == 2
    assert [e.seq for e in bus.replay(OrderPlaced)] == [1, 2, 4, 3]  # type: ignore[attr-defined]
    with engine.connect() as connection:
        assert outbox_order.installed(connection, table)
    bus.close()


def test_a_plain_sql_writer_with_only_insert_privileges_gets_its_rows_stamped(postgres):
    engine, table = postgres
    create_outbox(engine, table)
    role = f"writer_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role}"))
        connection.execute(text(f"GRANT INSERT ON {table} TO {role}"))
        connection.execute(text(f"GRANT USAGE ON SEQUENCE {table}_id_seq TO {role}"))
    try:
        for seq in (1, 2):
            with engine.begin() as connection:
                connection.execute(text(f"SET LOCAL ROLE {role}"))
                connection.execute(
                    text(
                        f"INSERT INTO {table} (aggregate_type, aggregate_id, contract, version, "
                        "payload) VALUES ('order', 'o', 'sql.order_placed', 1, :payload)"
                    ),
                    {"payload": f'{{"order": "o", "seq": {seq}}}'},
                )
        with engine.connect() as connection:
            stamps = connection.execute(
                text(f"SELECT commit_seq FROM {table} ORDER BY id")
            ).scalars()
            first, second = list(stamps)
        assert 0 < first < second, "stamped in commit order, as the function's owner"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))


def test_a_relay_that_may_not_migrate_an_old_outbox_says_what_to_run(postgres, postgres_url):
    engine, table = postgres
    metadata = MetaData()  # the table as the version before commit order made it
    outbox_table(table, metadata)
    dead_letter_table(table, metadata)
    metadata.create_all(engine)
    role = f"relay_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role}"))
        connection.execute(text(f"GRANT SELECT, UPDATE ON {table} TO {role}"))
    url = make_url(postgres_url).update_query_dict({"options": f"-c role={role}"})
    weak = engine_for(url.render_as_string(hide_password=False))
    bus = Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"})
    )
    try:
        with pytest.raises(outbox_order.OutboxNotMigrated) as refused:
            OutboxRelay(bus, weak, table=table).relay_once()
        assert f"interchange outbox init --table {table}" in str(refused.value)
        assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
    finally:
        bus.close()
        weak.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))


def test_a_row_written_with_triggers_disabled_is_published_ahead_of_stamped_rows(postgres):
    engine, table = postgres
    create_outbox(engine, table)
    insert = text(
        f"INSERT INTO {table} (aggregate_type, aggregate_id, contract, version, payload) "
        "VALUES ('order', 'o', 'sql.order_placed', 1, :payload)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"payload": '{"order": "o", "seq": 1}'})
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(insert, {"payload": '{"order": "o", "seq": 2}'})
    bus = Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"})
    )
    assert OutboxRelay(bus, engine, table=table).relay_once() == 2
    assert [e.seq for e in bus.replay(OrderPlaced)] == [2, 1]  # type: ignore[attr-defined]
    bus.close()
