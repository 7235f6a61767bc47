"""The table poller on SQLite and PostgreSQL: new rows once, updated rows again, shared
timestamps and microseconds across restarts, bad rows rejected with their reason.

On PostgreSQL each module gets a database of its own (``own_postgres_url``): a poller waits for
every transaction of its database, so another test's transaction left open on the shared one
would hold these back."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, create_engine, event, insert, text, update
from sqlalchemy.engine import make_url

from interchange import Bus, Event, Settings
from interchange.config import TablePollerConnector
from interchange.connectors.sql import engine_for
from interchange.connectors.sql.poller import PollerError, TablePoller
from interchange.testing import wait_until


class OrderChanged(Event, name="sql.poller.order_changed", version=1):
    order: str
    total: int


def _orders_table(engine, name):
    table = name.replace("outbox", "orders")
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, order_no VARCHAR(20),"
                " total INTEGER, updated_at TIMESTAMP)"
            )
        )
    return table


def _forget(engine, table) -> None:
    if engine.dialect.name != "postgresql":
        return  # SQLite: the test's own file
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        for kept in ("interchange_poller_state", "interchange_poller_rejects"):
            connection.execute(
                text(f"DELETE FROM {kept} WHERE poller = :p"), {"p": f"test-{table}"}
            )


@pytest.fixture(scope="module")
def own_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped at its end."""
    name = f"poller_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(postgres_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def legacy(request: pytest.FixtureRequest, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    else:
        url = request.getfixturevalue("own_postgres_url")
    engine = engine_for(url)
    table = _orders_table(engine, f"outbox_{uuid.uuid4().hex[:10]}")
    yield engine, table
    _forget(engine, table)
    engine.dispose()


@pytest.fixture
def pg_legacy(own_postgres_url: str):
    engine = engine_for(own_postgres_url)
    table = _orders_table(engine, f"outbox_{uuid.uuid4().hex[:10]}")
    yield engine, table
    _forget(engine, table)
    engine.dispose()


def _bus() -> Bus:
    return Bus(Settings(backends={"events": f"memory://{uuid.uuid4().hex}"}))


def _poller(bus, engine, table, **options) -> TablePoller:
    config = TablePollerConnector(
        name=f"test-{table}",
        url="unused://",
        table=table,
        contract="sql.poller.order_changed",
        columns={"order_no": "order", "total": "total"},
        key_column="order_no",
        **options,
    )
    return TablePoller(bus, config, engine=engine)


def _insert(engine, table, *rows) -> None:
    orders = Table(table, MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        for row in rows:
            connection.execute(insert(orders).values(**row))


def _published(bus) -> list[tuple[str, str, int]]:
    topic = bus.topic_of(OrderChanged)
    return [
        (d.message.id, d.message.key, e.total)
        for d, e in zip(bus.events.replay(topic), bus.replay(OrderChanged), strict=True)
    ]


def test_incrementing_new_rows_become_events_once_across_restarts(legacy):
    engine, table = legacy
    bus = _bus()
    _insert(engine, table, *({"id": n, "order_no": f"o{n}", "total": n * 10} for n in (1, 2, 3)))
    assert _poller(bus, engine, table).poll_once() == 3
    _insert(engine, table, {"id": 4, "order_no": "o4", "total": 40})
    restarted = _poller(bus, engine, table)
    assert restarted.poll_once() == 1
    assert restarted.poll_once() == 0
    assert _published(bus) == [(f"test-{table}-{n}", f"o{n}", n * 10) for n in (1, 2, 3, 4)]
    bus.close()


def test_rows_sharing_a_microsecond_time_are_neither_lost_nor_read_twice(legacy):
    engine, table = legacy
    bus = _bus()
    when = datetime(2026, 11, 27, 10, 0, 0, 123456)
    _insert(
        engine,
        table,
        *({"id": n, "order_no": f"o{n}", "total": n, "updated_at": when} for n in (1, 2, 3)),
    )
    options = {"mode": "timestamp+incrementing", "timestamp_column": "updated_at", "batch": 2}
    assert _poller(bus, engine, table, **options).poll_once() == 2
    assert _poller(bus, engine, table, **options).poll_once() == 1  # restarted mid-time
    assert _poller(bus, engine, table, **options).poll_once() == 0  # not again, ever
    orders = Table(table, MetaData(), autoload_with=engine)
    with engine.begin() as connection:  # an update is a new version of the row
        connection.execute(
            update(orders)
            .where(orders.c.id == 2)
            .values(total=200, updated_at=when + timedelta(microseconds=1))
        )
    assert _poller(bus, engine, table, **options).poll_once() == 1
    published = _published(bus)
    assert [total for _, _, total in published] == [1, 2, 3, 200]
    assert len({message_id for message_id, _, _ in published}) == 4
    bus.close()


def test_a_row_that_makes_no_valid_event_is_rejected_with_its_reason(legacy):
    engine, table = legacy
    bus = _bus()
    _insert(
        engine,
        table,
        {"id": 1, "order_no": "o1", "total": 1},
        {"id": 2, "order_no": None, "total": 2},
        {"id": 3, "order_no": "o3", "total": 3},
    )
    poller = _poller(bus, engine, table)
    assert poller.poll_once() == 3
    assert [total for _, _, total in _published(bus)] == [1, 3]
    [rejected] = poller.rejected()
    assert rejected.row_id == "2"
    assert "order" in rejected.reason
    assert "ValidationError" in rejected.reason
    assert json.loads(rejected.row)["order_no"] is None, "NULL is stored as JSON null"
    bus.close()


def test_a_role_lacking_privileges_on_the_poller_tables_gets_one_line_naming_them(
    pg_legacy, caplog
):
    engine, table = pg_legacy
    _poller(_bus(), engine, table)  # its state tables, made by their owner
    role = f"poller_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        connection.execute(text(f"GRANT SELECT ON {table} TO {role}"))  # the polled table only
    limited = engine_for(engine.url.render_as_string(hide_password=False))

    @event.listens_for(limited, "connect")
    def _as_role(dbapi_connection, _):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        dbapi_connection.commit()

    bus = _bus()
    poller = _poller(bus, limited, table)
    try:
        with pytest.raises(PollerError) as refused:
            poller.poll_once()
        message = str(refused.value)
        assert "\n" not in message, message
        assert "permission denied for table interchange_poller_state" in message
        assert "SELECT, INSERT, UPDATE on interchange_poller_state" in message
        caplog.set_level(logging.ERROR, logger="interchange.connectors.sql")
        poller.start()  # the running loop logs it in one line, without a traceback
        wait_until(lambda: any("permission denied" in r.getMessage() for r in caplog.records))
        poller.stop()
        [logged] = [r for r in caplog.records if "permission denied" in r.getMessage()][:1]
        assert logged.exc_info is None
        assert "\n" not in logged.getMessage()
    finally:
        poller.stop()
        limited.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        bus.close()


def test_a_crash_between_publishing_and_moving_the_mark_publishes_the_same_ids_again(legacy):
    engine, table = legacy
    bus = _bus()
    _insert(engine, table, *({"id": n, "order_no": f"o{n}", "total": n} for n in (1, 2)))
    crashing = _poller(bus, engine, table)

    def crash(connection, last):
        raise RuntimeError("killed before the mark moved")

    crashing._advance = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        crashing.poll_once()
    assert _poller(bus, engine, table).poll_once() == 2  # the mark did not move
    ids = [message_id for message_id, _, _ in _published(bus)]
    assert ids == [f"test-{table}-1", f"test-{table}-2"] * 2  # consumers dedupe these
    bus.close()


def test_postgres_a_row_committed_late_with_a_lower_id_is_not_passed_over(pg_legacy):
    engine, table = pg_legacy
    bus = _bus()
    orders = Table(table, MetaData(), autoload_with=engine)
    slow = engine.connect()
    slow_tx = slow.begin()
    slow.execute(insert(orders).values(id=1, order_no="o1", total=1))
    _insert(engine, table, {"id": 2, "order_no": "o2", "total": 2})
    poller = _poller(bus, engine, table)
    assert poller.poll_once() == 0, "row 2 waits: an older transaction is still running"
    slow_tx.commit()
    slow.close()
    assert poller.poll_once() == 2
    assert [total for _, _, total in _published(bus)] == [1, 2]
    bus.close()


def test_a_poller_killed_mid_batch_on_kafka_publishes_every_row_with_stable_ids(
    pg_legacy, own_postgres_url, kafka_url
):
    postgres_url = own_postgres_url
    import subprocess
    import sys
    from pathlib import Path

    engine, table = pg_legacy
    _insert(
        engine, table, *({"id": n, "order_no": f"o{n % 7}", "total": n} for n in range(1, 1001))
    )
    prefix = f"poll-{uuid.uuid4().hex[:8]}."

    def run(die_at: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.sql.poller_worker",
                postgres_url,
                table,
                prefix,
                kafka_url,
                str(die_at),
            ],
            cwd=Path(__file__).resolve().parents[2],
            timeout=120,
            capture_output=True,
            text=True,
        )

    assert run(die_at=4).returncode == -9  # batch 4 published, its mark not moved
    finished = run(die_at=0)
    assert finished.returncode == 0, finished.stderr
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url}, channel_prefix=prefix
        )
    )
    ids = [d.message.id for d in bus.events.replay(bus.topic_of(OrderChanged))]
    assert sorted(set(ids)) == sorted(f"test-{table}-{n}" for n in range(1, 1001))
    assert len(ids) == 1100, "batch 4 (rows 301-400) was published twice, with the same ids"
    bus.close()


def test_a_poller_whose_database_fails_at_bridge_start_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "interchange.toml"
    config.write_text(
        'contract_modules = ["tests.sql.test_poller"]\n'
        "[[connectors.pollers]]\n"
        'name = "p"\n'
        'url = "postgresql://someone:secret@127.0.0.1:1/app"\n'  # nothing listens there
        'table = "orders"\n'
        'contract = "sql.poller.order_changed"\n'
        'columns = { order_no = "order", total = "total" }\n'
    )
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "bridge", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("interchange: error: poller p: creating interchange_poller_state")
    assert "secret" not in line
