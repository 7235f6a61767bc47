"""The SQL sink on SQLite and PostgreSQL: upserts from configuration, each message's effect
once, an older version never over a newer one."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from interchange import Bus, Event, Settings
from interchange.config import SqlSinkConnector
from interchange.connectors.sql.sink import SqlSink
from interchange.testing import make_context, wait_until


class Customer(Event, name="sql.sink.customer", version=1):
    id: str
    name: str
    city: str


class PriceSet(Event, name="sql.sink.price_set", version=1):
    sku: str
    price: int
    revision: int


def _legacy(engine, table: str, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql.format(table=table)))


def _rows(engine, table: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def _drop(engine, table: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        connection.execute(text("DELETE FROM interchange_processed WHERE consumer LIKE 'test-%'"))


@pytest.fixture
def legacy(database):
    engine, name = database
    table = name.replace("outbox", "legacy")
    yield engine, table
    _drop(engine, table)


def test_events_are_upserted_into_a_legacy_table_by_its_key(legacy):
    engine, table = legacy
    _legacy(
        engine,
        table,
        "CREATE TABLE {table} (cust_no VARCHAR(20) PRIMARY KEY,"
        " cust_name VARCHAR(80), town VARCHAR(80))",
    )
    bus = Bus(Settings(backends={"events": f"memory://{uuid.uuid4().hex}"}))
    sink = SqlSink(
        SqlSinkConnector(
            name=f"test-{table}",
            url="unused://",
            contract="sql.sink.customer",
            table=table,
            keys=["cust_no"],
            columns={"cust_no": "id", "cust_name": "name", "town": "city"},
        ),
        engine=engine,
    )
    sink.attach(bus)
    with bus:
        bus.publish(Customer(id="C1", name="Ada", city="London"))
        bus.publish(Customer(id="C2", name="Grace", city="Arlington"))
        bus.publish(Customer(id="C1", name="Ada", city="Cambridge"))  # moved: same key
        wait_until(
            lambda: (
                _rows(engine, table) == [("C1", "Ada", "Cambridge"), ("C2", "Grace", "Arlington")]
            ),
            10,
            message=lambda: str(_rows(engine, table)),
        )
    bus.close()


def test_a_redelivered_message_changes_nothing_and_aborts_nothing(legacy):
    engine, table = legacy
    _legacy(
        engine,
        table,
        "CREATE TABLE {table} (cust_no VARCHAR(20) PRIMARY KEY,"
        " cust_name VARCHAR(80), town VARCHAR(80))",
    )
    sink = SqlSink(
        SqlSinkConnector(
            name=f"test-{table}",
            url="unused://",
            contract="sql.sink.customer",
            table=table,
            keys=["cust_no"],
            columns={"cust_no": "id", "cust_name": "name", "town": "city"},
        ),
        engine=engine,
    )
    first = make_context(Customer(id="C1", name="Ada", city="London"))
    sink.apply(Customer(id="C1", name="Ada", city="London"), first)
    sink.apply(Customer(id="C1", name="Ada", city="Paris"), first)  # same message id again
    assert _rows(engine, table) == [("C1", "Ada", "London")]
    later = make_context(Customer(id="C1", name="Ada", city="Paris"))
    sink.apply(Customer(id="C1", name="Ada", city="Paris"), later)  # a new message: applied
    assert _rows(engine, table) == [("C1", "Ada", "Paris")]


def test_an_older_version_never_overwrites_a_newer_row(legacy):
    engine, table = legacy
    _legacy(
        engine,
        table,
        "CREATE TABLE {table} (sku VARCHAR(20) PRIMARY KEY, price INTEGER, rev INTEGER)",
    )
    sink = SqlSink(
        SqlSinkConnector(
            name=f"test-{table}",
            url="unused://",
            contract="sql.sink.price_set",
            table=table,
            keys=["sku"],
            columns={"sku": "sku", "price": "price", "rev": "revision"},
            version_column="rev",
        ),
        engine=engine,
    )
    for price, revision in [(10, 1), (30, 3), (20, 2)]:  # revision 2 arrives late
        event = PriceSet(sku="S1", price=price, revision=revision)
        sink.apply(event, make_context(event))
    assert _rows(engine, table) == [("S1", 30, 3)]


def test_a_mapping_naming_a_missing_column_is_refused_at_start(legacy):
    engine, table = legacy
    _legacy(engine, table, "CREATE TABLE {table} (sku VARCHAR(20) PRIMARY KEY)")
    with pytest.raises(ValueError, match="has no column"):
        SqlSink(
            SqlSinkConnector(
                name="test-x",
                url="unused://",
                contract="sql.sink.price_set",
                table=table,
                keys=["sku"],
                columns={"sku": "sku", "cost": "price"},
            ),
            engine=engine,
        )
