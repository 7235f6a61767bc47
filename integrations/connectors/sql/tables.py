"""The tables the SQL connectors own, in SQLAlchemy Core, and the engines they use.

SQLite is the embedded default, PostgreSQL the real one (psycopg 3). On SQLite every
transaction a connector opens takes the write lock up front (``BEGIN IMMEDIATE``): two writers
never deadlock upgrading a read lock. On PostgreSQL each outbox row records the transaction
that wrote it (``tx``, an ``xid8``) and its place in the commit order (``commit_seq``,
outbox_order), and an insert notifies ``interchange_outbox``, so relays wake at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    text,
)
from sqlalchemy.engine import make_url

from interchange.connectors.sql import outbox_order

CHANNEL = "interchange_outbox"
"""The PostgreSQL NOTIFY channel an outbox insert wakes relays on."""

_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only


def engine_for(url: str) -> Engine:
    """An engine for a database URL: ``postgresql://`` means psycopg 3; SQLite transactions
    take the write lock up front."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except ModuleNotFoundError as missing:
        raise ImportError(
            f"{parsed.drivername} needs its driver ({missing}): for PostgreSQL, "
            "pip install 'interchange-bus[postgres]'"
        ) from missing
    if engine.dialect.name == "sqlite":
        _begin_immediate(engine)
    return engine


def _begin_immediate(engine: Engine) -> None:
    # pysqlite opens transactions lazily and as readers; SQLAlchemy's documented recipe lets us
    # issue BEGIN ourselves (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html)
    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def outbox_table(name: str = "interchange_outbox", metadata: MetaData | None = None) -> Table:
    """The outbox: one row per message an application wants sent with its own transaction."""
    table = Table(
        name,
        metadata or MetaData(),
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("message_id", String(64)),  # empty: "<table>-<id>" is used
        Column("aggregate_type", String(255), nullable=False),
        Column("aggregate_id", String(255), nullable=False),  # the partition key
        Column("contract", String(255), nullable=False),
        Column("version", Integer, nullable=False),
        Column("payload", Text, nullable=False),  # the contract's JSON
        Column("headers", Text),  # a JSON object of extra headers, or empty
        Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
        Column("attempts", Integer, server_default=text("0"), nullable=False),
        Column("last_error", Text),
        Column("sent_at", DateTime(timezone=True)),
    )
    # the relay reads unsent rows by id: a partial index holds exactly those, in that order
    unsent = table.c.sent_at.is_(None)
    Index(f"{name}_unsent", table.c.id, postgresql_where=unsent, sqlite_where=unsent)
    return table


def dead_letter_table(outbox: str, metadata: MetaData | None = None) -> Table:
    """Rows the relay could not send (bad payload, unknown contract, attempts used up)."""
    return Table(
        f"{outbox}_dead_letters",
        metadata or MetaData(),
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("outbox_id", BigInteger, nullable=False),
        Column("message_id", String(64), nullable=False),
        Column("aggregate_type", String(255), nullable=False),
        Column("aggregate_id", String(255), nullable=False),
        Column("contract", String(255), nullable=False),
        Column("version", Integer, nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", Text),
        Column("reason", Text, nullable=False),
        Column("failed_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    )


def create_outbox(engine: Engine, name: str = "interchange_outbox") -> None:
    """Create the outbox and its dead-letter table (``interchange outbox init``); on
    PostgreSQL also its NOTIFY trigger and its commit order (outbox_order), which migrates an
    outbox of an older version. Idempotent."""
    metadata = MetaData()
    outbox_table(name, metadata)
    dead_letter_table(name, metadata)
    metadata.create_all(engine)
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        connection.execute(
            text(
                f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL "
                "DEFAULT pg_current_xact_id()"
            )
        )
        connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION interchange_outbox_notify() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); "
                "RETURN NULL; END $$"
            )
        )
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}_notify ON {name}"))
        connection.execute(
            text(
                f"CREATE TRIGGER {name}_notify AFTER INSERT ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION interchange_outbox_notify()"
            )
        )
        outbox_order.install(connection, name)
