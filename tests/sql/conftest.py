"""Databases for the SQL connectors' tests: SQLite in the test's own directory, and the real
PostgreSQL (``postgres_url``), each test on tables of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from interchange.connectors.sql import engine_for


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[Engine, str]]:
    """(engine, a table name unique to this test) on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = engine_for(url)
    table = f"outbox_{uuid.uuid4().hex[:10]}"
    yield engine, table
    if engine.dialect.name == "postgresql":
        drop_outbox(engine, table)
    engine.dispose()


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[tuple[Engine, str]]:
    """(engine, a table name unique to this test) on PostgreSQL only."""
    engine = engine_for(postgres_url)
    table = f"outbox_{uuid.uuid4().hex[:10]}"
    yield engine, table
    drop_outbox(engine, table)
    engine.dispose()


def drop_outbox(engine: Engine, table: str) -> None:
    """Drop an outbox and everything ``create_outbox`` made for it."""
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}, {table}_dead_letters"))
        connection.execute(text(f"DROP FUNCTION IF EXISTS {table}_commit_seq()"))
