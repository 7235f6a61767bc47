"""The table poller on PostgreSQL never moves its mark past a row a transaction still running
can commit: the interleavings that lose rows with an xmin-only wait, driven step by step on
plain-SQL connections held open; the round leaves no transaction open on any error path; a
poller that cannot see other roles' sessions reads nothing and says why."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable
from interchange.connectors.sql import engine_for
from interchange.connectors.sql.poller import PollerError, UnseenTransactions
from interchange.testing import wait_until
from tests.sql.test_poller import (  # noqa: F401  (own_postgres_url: a fixture)
    OrderChanged,
    _bus,
    _poller,
    _published,
    own_postgres_url,
)


def _serial_orders(engine: Engine) -> str:
    """Ids from a sequence, times from the writing transaction's start, as legacy tables do."""
    table = f"orders_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, order_no VARCHAR(20),"
                " total INTEGER, updated_at TIMESTAMP NOT NULL DEFAULT now())"
            )
        )
    return table


@pytest.fixture
def orders(own_postgres_url: str):  # noqa: F811
    engine = engine_for(own_postgres_url)
    table = _serial_orders(engine)
    yield engine, table
    engine.dispose()


def _writer(engine: Engine) -> Connection:
    """A connection of its own with a transaction begun on the server (psycopg sends BEGIN
    with the first statement)."""
    connection = engine.connect()
    connection.begin()
    connection.execute(text("SELECT 1"))
    return connection


def _add(connection: Connection, table: str, total: int) -> None:
    connection.execute(
        text(f"INSERT INTO {table} (order_no, total) VALUES (:o, :t)"),
        {"o": f"o{total}", "t": total},
    )


def _totals(bus) -> list[int]:
    return [total for _, _, total in _published(bus)]


def test_an_id_drawn_before_a_higher_one_committed_is_not_passed_over(orders):
    engine, table = orders
    bus = _bus()
    poller = _poller(bus, engine, table)
    with engine.begin() as connection:
        for total in (1, 2):
            _add(connection, table, total)
    wait_until(lambda: poller.poll_once() >= 0 and _totals(bus) == [1, 2], 10)
    b, a = _writer(engine), _writer(engine)
    _add(b, table, 3)  # B draws id 3
    _add(a, table, 4)  # A draws id 4
    _add(b, table, 5)  # B draws id 5 and commits: 3 and 5 visible, 4 not yet
    b.commit()
    for _ in range(3):
        poller.poll_once()
    assert _totals(bus) == [1, 2], "3 and 5 wait while A, which drew 4, runs"
    a.commit()
    wait_until(lambda: poller.poll_once() >= 0 and len(_totals(bus)) >= 5, 10)
    assert _totals(bus) == [1, 2, 3, 4, 5]
    a.close(), b.close()
    bus.close()


def test_a_row_stamped_at_an_earlier_start_and_committed_later_is_not_passed_over(orders):
    engine, table = orders
    bus = _bus()
    options = {"mode": "timestamp+incrementing", "timestamp_column": "updated_at"}
    poller = _poller(bus, engine, table, **options)
    a = _writer(engine)  # A begins: its rows will carry this start as their time
    with engine.begin() as b:  # B begins later, writes and commits at once
        _add(b, table, 2)
    for _ in range(3):
        poller.poll_once()
    assert _totals(bus) == [], "B's row waits: A began before it and may still write"
    _add(a, table, 1)
    a.commit()
    wait_until(lambda: poller.poll_once() >= 0 and len(_totals(bus)) >= 2, 10)
    assert _totals(bus) == [1, 2], "A's row first: its time is its start, before B's"
    a.close()
    bus.close()


def test_a_transaction_open_in_another_database_does_not_hold_the_poller(orders, postgres_url):
    engine, table = orders
    bus = _bus()
    poller = _poller(bus, engine, table)
    elsewhere = engine_for(postgres_url)  # the shared database, not this module's own
    other = _writer(elsewhere)
    other.execute(text("SELECT pg_current_xact_id()"))  # holds an xid: the cluster's xmin
    try:
        with engine.begin() as connection:
            _add(connection, table, 1)
        wait_until(lambda: poller.poll_once() >= 0 and _totals(bus) == [1], 10)
    finally:
        other.rollback(), other.close()
        elsewhere.dispose()
    bus.close()


def _open_transactions(engine: Engine, application: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT state FROM pg_stat_activity WHERE application_name = :a"
                    " AND xact_start IS NOT NULL"
                ),
                {"a": application},
            ).scalars()
        )


def test_no_transaction_of_the_poller_is_left_open_on_any_error_path(orders, own_postgres_url):  # noqa: F811
    engine, table = orders
    application = f"poller-{uuid.uuid4().hex[:8]}"
    url = make_url(own_postgres_url).set(
        drivername="postgresql+psycopg", query={"application_name": application}
    )
    polling = create_engine(url, pool_pre_ping=True)
    bus = _bus()
    poller = _poller(bus, polling, table)
    with engine.begin() as connection:
        _add(connection, table, 1)
    seen_while_publishing: list[list[str]] = []

    def broker_down(*_, **__):
        seen_while_publishing.append(_open_transactions(engine, application))
        raise BackendUnavailable("every backend down")

    bus.publish_many = broker_down  # type: ignore[method-assign]
    wait_until(lambda: _fails(poller.poll_once, BackendUnavailable), 10)
    assert seen_while_publishing[-1] == [], "no transaction open while the Bus publishes"
    assert _open_transactions(engine, application) == []

    del bus.publish_many

    def mark_refused(connection, last):
        raise RuntimeError("the mark's update failed")

    poller._advance = mark_refused  # type: ignore[method-assign]
    assert _fails(poller.poll_once, RuntimeError)
    assert _open_transactions(engine, application) == []

    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {table}"))
    assert _fails(poller.poll_once, PollerError)  # the table is gone: the read fails
    assert _open_transactions(engine, application) == []
    polling.dispose()
    bus.close()


def test_a_poller_that_cannot_see_other_roles_sessions_reads_nothing_and_says_why(orders):
    engine, table = orders
    role = f"poller_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        _poller(_bus(), engine, table)  # its state tables, made by the owner
        connection.execute(
            text(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role}")
        )
        _add(connection, table, 1)
    limited = engine_for(str(engine.url.render_as_string(hide_password=False)))

    @event.listens_for(limited, "connect")
    def _as_role(dbapi_connection, _):  # the poller's role: no pg_read_all_stats
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {role}")
        dbapi_connection.commit()

    bus = _bus()
    poller = _poller(bus, limited, table)
    other = _writer(engine)  # another role's transaction, which the poller cannot see
    try:
        with pytest.raises(UnseenTransactions, match="pg_read_all_stats"):
            poller.poll_once()
        assert _totals(bus) == []
    finally:
        other.rollback(), other.close()
        limited.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
    bus.close()


def _fails(call, error: type[BaseException]) -> bool:
    try:
        call()
    except error:
        return True
    return False


@pytest.mark.parametrize("mode", ["incrementing", "timestamp+incrementing"])
def test_concurrent_writers_every_committed_row_published_nothing_rolled_back(
    orders,
    own_postgres_url,  # noqa: F811
    redis_url,
    tmp_path,
    mode,
):
    """8 plain-SQL writers, 1-4 rows a transaction, some drawing their ids first and writing
    later, some committing 1-2 s late, some rolling back, while the poller runs in a process
    of its own that is SIGKILLed once and started again."""
    _, table = orders
    seed = random.randrange(1 << 30)
    prefix = f"horizon-{uuid.uuid4().hex[:8]}."
    stop = tmp_path / "stop"
    committed: set[int] = set()
    rolled_back: set[int] = set()
    lock = threading.Lock()
    writing_until = time.monotonic() + 5.0

    def write(writer: int) -> None:
        rng = random.Random(seed + writer)
        token = writer * 1_000_000
        with psycopg.connect(own_postgres_url) as connection:
            while time.monotonic() < writing_until:
                tokens = list(range(token, token + rng.randint(1, 4)))
                token += len(tokens)
                connection.execute("SELECT 1")  # the transaction begins: its now() is fixed
                ids: list[int | None] = [None] * len(tokens)
                if rng.random() < 0.3:  # ids drawn first, the rows written a while later
                    ids = [
                        row[0]
                        for row in connection.execute(
                            "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
                            " FROM generate_series(1, %s)",
                            (table, len(tokens)),
                        )
                    ]
                    time.sleep(rng.uniform(0.0, 0.3))
                for ident, total in zip(ids, tokens, strict=True):
                    connection.execute(
                        f"INSERT INTO {table} (id, order_no, total)"
                        " VALUES (coalesce(%s, nextval(pg_get_serial_sequence(%s, 'id'))), %s, %s)",
                        (ident, table, f"o{total}", total),
                    )
                if rng.random() < 0.15:
                    time.sleep(rng.uniform(1.0, 2.0))  # commits late
                if rng.random() < 0.15:
                    connection.rollback()
                    with lock:
                        rolled_back.update(tokens)
                else:
                    connection.commit()
                    with lock:
                        committed.update(tokens)

    def start_poller() -> subprocess.Popen[bytes]:
        arguments = [own_postgres_url, table, prefix, redis_url, mode, str(stop)]
        return subprocess.Popen(
            [sys.executable, "-m", "tests.sql.poller_horizon_worker", *arguments],
            cwd=Path(__file__).resolve().parents[2],
            stderr=log,
        )

    log = (tmp_path / "poller.log").open("ab")  # its stderr, when a run needs reading
    reader = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": redis_url}, channel_prefix=prefix
        )
    )

    def published() -> list[int]:
        try:
            return [event.total for event in reader.replay(OrderChanged)]
        except BackendUnavailable:  # the shared Redis restarted by another test: ask again
            return []

    poller = start_poller()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in writers:
        thread.start()
    try:
        wait_until(
            lambda: len(published()) >= 20,
            15,
            message=lambda: f"seed {seed}: {len(published())} of {len(committed)} published",
        )
        poller.kill()  # SIGKILL, mid-stream
        assert poller.wait(10) == -signal.SIGKILL
        poller = start_poller()
        for thread in writers:
            thread.join(30)
        wait_until(
            lambda: committed <= set(published()),
            30,
            message=lambda: f"seed {seed}: never published {sorted(committed - set(published()))}",
        )
        final = set(published())
        assert committed <= final, f"seed {seed}: the stream could not be read again"
        assert not rolled_back & final, f"seed {seed}: a rolled-back row was sent"
        assert len(committed) > 50, f"seed {seed}: too few rows to mean anything"
        assert rolled_back, f"seed {seed}: no transaction rolled back"
    finally:
        stop.touch()
        try:
            poller.wait(15)
        except subprocess.TimeoutExpired:
            poller.kill()
        reader.close()
        log.close()


def test_an_id_sequence_that_caches_blocks_per_session_is_refused_at_start(orders):
    engine, table = orders
    with engine.begin() as connection:
        connection.execute(text(f"ALTER SEQUENCE {table}_id_seq CACHE 20"))
    with pytest.raises(ValueError, match="CACHE 20"):
        _poller(_bus(), engine, table)


def test_a_long_transaction_keeps_the_pollers_memory_bounded_and_releases_it_all(orders):
    engine, table = orders
    bus = _bus()
    poller = _poller(bus, engine, table)
    long = _writer(engine)  # began before every row below; never writes
    with engine.begin() as connection:
        _add(connection, table, 1)
    for _ in range(50):
        assert poller.poll_once() == 0
    assert poller.horizon is not None
    assert len(poller.horizon._observations) <= 2  # one before its start, the latest
    long.rollback(), long.close()
    wait_until(lambda: poller.poll_once() >= 0 and _totals(bus) == [1], 10)
    bus.close()


def test_a_session_with_track_activities_off_makes_the_round_fail_not_guess(orders):
    engine, table = orders
    bus = _bus()
    poller = _poller(bus, engine, table)
    with engine.begin() as connection:
        _add(connection, table, 1)
    hiding = engine_for(str(engine.url.render_as_string(hide_password=False)))
    hidden = hiding.connect()
    hidden.execute(text("SET track_activities = off"))  # its transactions no longer listed
    hidden.commit()
    try:
        with pytest.raises(UnseenTransactions, match="track_activities"):
            poller.poll_once()
        assert _totals(bus) == []
    finally:
        hidden.close()
        hiding.dispose()  # the session ends: nothing hidden any more
    wait_until(lambda: poller.poll_once() >= 0 and _totals(bus) == [1], 10)
    bus.close()
