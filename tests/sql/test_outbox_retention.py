"""Sent outbox rows are purged after their retention, in bounded batches; unsent rows, rows
sent recently and dead letters stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Engine, func, select, text, update

from interchange import Bus, Settings
from interchange.connectors.sql import OutboxRelay, add_to_outbox, create_outbox, outbox_table
from interchange.connectors.sql.tables import dead_letter_table
from interchange.testing import wait_until
from tests.sql.test_outbox import OrderPlaced


def _bus() -> Bus:
    return Bus(
        Settings(backends={"commands": "memory://", "events": f"memory://{uuid.uuid4().hex}"})
    )


def _add(engine: Engine, table: str, count: int, bad: bool = False) -> None:
    with engine.begin() as connection:
        for n in range(count):
            add_to_outbox(
                connection,
                OrderPlaced(order="o", seq=n),
                aggregate_type="order",
                aggregate_id="o",
                table=table,
            )
        if bad:  # a row that can only be dead-lettered
            connection.execute(
                text(
                    f"INSERT INTO {table} (aggregate_type, aggregate_id, contract, version, "
                    "payload) VALUES ('order', 'o', 'sql.no_such_thing', 1, '{}')"
                )
            )


def _age(engine: Engine, table: str, ids: list[int], hours: float) -> None:
    """Pretend these rows were sent ``hours`` ago."""
    outbox = outbox_table(table)
    with engine.begin() as connection:
        connection.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(sent_at=func.now() - timedelta(hours=hours))
            if engine.dialect.name == "postgresql"
            else update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(sent_at=text(f"datetime('now', '-{hours} hours')"))
        )


def _ids(engine: Engine, table: str) -> list[int]:
    outbox = outbox_table(table)
    with engine.connect() as connection:
        return list(connection.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars())


def test_rows_sent_before_the_retention_are_purged_in_batches_the_rest_stay(database):
    engine, table = database
    create_outbox(engine, table)
    _add(engine, table, 7, bad=True)  # ids 1-7, and 8 dead-lettered
    bus = _bus()
    relay = OutboxRelay(bus, engine, table=table, batch=2, retention_hours=24)
    while relay.relay_once():
        pass
    _add(engine, table, 1)  # id 9, unsent
    _age(engine, table, [1, 2, 3, 4, 5], hours=25)  # 6, 7 and 8 just now
    assert relay.purge_sent() == 5  # in batches of 2 (the relay's batch)
    assert _ids(engine, table) == [6, 7, 8, 9]
    with engine.connect() as connection:
        dead = connection.execute(select(dead_letter_table(table))).all()
    assert [row.outbox_id for row in dead] == [8], "dead letters stay"
    assert relay.purge_sent() == 0
    assert relay.relay_once() == 1  # what was unsent is sent
    _age(engine, table, [6, 7, 8, 9], hours=25)
    assert relay.purge_sent() == 3
    assert _ids(engine, table) == [9], "the newest row stays: its id is never given again"
    _add(engine, table, 1)
    assert _ids(engine, table) == [9, 10]
    bus.close()


def test_the_running_relay_purges_on_its_own_and_not_without_retention(database):
    engine, table = database
    create_outbox(engine, table)
    _add(engine, table, 3)
    bus = _bus()
    keeping = OutboxRelay(bus, engine, table=table, retention_hours=None)
    assert keeping.relay_once() == 3
    _age(engine, table, [1, 2, 3], hours=1000)
    assert keeping.purge_sent() == 0
    relay = OutboxRelay(bus, engine, table=table, retention_hours=1, poll_interval=0.05)
    relay.purge_every = 0.1
    relay.start()
    try:
        _add(engine, table, 2)  # ids 4 and 5: sent now, kept
        wait_until(
            lambda: _ids(engine, table) == [4, 5],
            10,
            message=lambda: f"purged by the loop: {_ids(engine, table)} left",
        )
        wait_until(lambda: relay.pending() == 0, 10)
    finally:
        relay.stop()
    assert _ids(engine, table) == [4, 5]
    bus.close()


def test_the_bridge_configures_retention_and_0_keeps_sent_rows(tmp_path):
    from rich.console import Console

    from interchange.config import Connectors
    from interchange.connectors.bridge import _loops

    url = f"sqlite:///{tmp_path / 'app.db'}"
    bus = _bus()
    for hours, kept in ((0, None), (6, timedelta(hours=6))):
        connectors = Connectors.model_validate({"outbox": {"url": url, "retention_hours": hours}})
        [relay] = _loops(connectors, bus, Console(quiet=True))
        assert relay.retention == kept
    default = Connectors.model_validate({"outbox": {"url": url}})
    assert default.outbox is not None
    assert default.outbox.retention_hours == 24
    bus.close()
