"""A SQL sink killed between its effect and its commit, then restarted: every row written, and
each exactly once (a trigger counts the writes of every row)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import text

from interchange import Bus, Settings
from tests.sql.test_sink import Customer

ROOT = Path(__file__).resolve().parents[2]


def _sink_process(postgres_url, table, prefix, kafka_url, die_at, count):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sql.sink_worker",
            postgres_url,
            table,
            prefix,
            kafka_url,
            str(die_at),
            str(count),
        ],
        cwd=ROOT,
        timeout=150,
        capture_output=True,
        text=True,
    )


def test_a_sink_killed_between_effect_and_commit_applies_every_message_once(
    postgres, postgres_url, kafka_url
):
    engine, name = postgres
    table = name.replace("outbox", "legacy")
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE {table} (cust_no VARCHAR(20) PRIMARY KEY, cust_name VARCHAR(80),"
                " town VARCHAR(80), writes INTEGER NOT NULL DEFAULT 1)"
            )
        )
        connection.execute(
            text(
                f"CREATE FUNCTION {table}_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "NEW.writes := OLD.writes + 1; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                f"CREATE TRIGGER {table}_writes BEFORE UPDATE ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION {table}_count()"
            )
        )
    prefix = f"sink-{uuid.uuid4().hex[:8]}."
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url}, channel_prefix=prefix
        )
    )
    bus.publish_many([Customer(id=f"C{n:03}", name=f"n{n}", city="x") for n in range(200)])
    bus.close()
    try:
        killed = _sink_process(postgres_url, table, prefix, kafka_url, die_at=50, count=200)
        assert killed.returncode == -9, killed.stderr
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 49
        finished = _sink_process(postgres_url, table, prefix, kafka_url, die_at=0, count=200)
        assert finished.returncode == 0, finished.stderr
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT cust_no, writes FROM {table}")).all()
            processed = connection.execute(
                text("SELECT count(*) FROM interchange_processed WHERE consumer = :c"),
                {"c": f"test-{table}"},
            ).scalar_one()
        assert sorted(r.cust_no for r in rows) == [f"C{n:03}" for n in range(200)]
        assert {r.writes for r in rows} == {1}, "some row was written twice"
        assert processed == 200
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
            connection.execute(text(f"DROP FUNCTION IF EXISTS {table}_count()"))
            connection.execute(
                text("DELETE FROM interchange_processed WHERE consumer = :c"),
                {"c": f"test-{table}"},
            )
