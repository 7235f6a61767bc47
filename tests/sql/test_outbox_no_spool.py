"""The outbox relay does not spool: with a fallback configured and Kafka unreachable, the
bridge's relay marks nothing sent and counts nothing; once Kafka answers, every row arrives in
commit order per aggregate and an oversized row is counted and parked (real PostgreSQL, Kafka
and Redis)."""

from __future__ import annotations

import random
import uuid

import pytest
from rich.console import Console
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable
from interchange.adapters.errors import ConfigurationError
from interchange.connectors.bridge import Bridged, _loops
from interchange.connectors.sql import OutboxRelay
from interchange.connectors.sql.tables import dead_letter_table
from interchange.testing import wait_until
from tests.sql.test_outbox import OrderPlaced
from tests.sql.test_outbox_refusals import TOO_LARGE, _add, tagged  # noqa: F401


@pytest.mark.kafka
@pytest.mark.redis
def test_the_bridges_relay_keeps_rows_in_the_table_while_kafka_is_down(
    tagged,  # noqa: F811
    kafka_url,
    redis_url,
):
    engine, table, _ = tagged
    # a Redis db of this test's own: a spool shared with other runs could be drained by them
    fallback = make_url(redis_url).set(database=str(random.randint(1, 15)))
    prefix = f"nospool-{uuid.uuid4().hex[:8]}."

    def settings(events: str) -> Settings:
        return Settings.without_environment(
            backends={
                "commands": "memory://",
                "events": events,
                "fallback": fallback.render_as_string(hide_password=False),
                "fallback_timeout": 1.0,
            },
            channel_prefix=prefix,
            connectors={
                "outbox": {
                    "url": engine.url.render_as_string(hide_password=False),
                    "table": table,
                    "max_attempts": 2,
                }
            },
        )

    _add(engine, table, [("a1", "a", 0), ("b1", "b", 0), ("big", "a", TOO_LARGE)])
    _add(engine, table, [("a2", "a", 0), ("b2", "b", 0)])
    down = settings("kafka://127.0.0.1:1?publish_timeout=2")  # nothing listens there
    bus = Bus(down)
    [relay] = _loops(down.connectors, bus, Console(quiet=True))
    try:
        with pytest.raises(BackendUnavailable):
            relay.relay_once()
        assert relay.pending() == 5, "nothing marked sent while Kafka is down"
        with engine.connect() as connection:
            attempts = connection.execute(text(f"SELECT attempts FROM {table}")).scalars()
            assert set(attempts) == {0}, "BackendUnavailable is not a refusal"
    finally:
        Bridged(bus, [relay]).close()
        relay.engine.dispose()

    up = settings(kafka_url)
    bus = Bus(up)
    [relay] = _loops(up.connectors, bus, Console(quiet=True))
    try:
        wait_until(lambda: relay.relay_once() >= 0 and relay.pending() == 0, 30)
        replayed = [e.order for e in relay.bus.replay(OrderPlaced)]  # type: ignore[attr-defined]
        # a refused run is sent again row by row: its rows before the refused one arrive
        # twice, with the same ids (consumers dedupe), so keep the first of each
        received = list(dict.fromkeys(replayed))
        assert [o for o in received if o.startswith("a")] == ["a1", "a2"]
        assert [o for o in received if o.startswith("b")] == ["b1", "b2"]
        assert len(received) == 4, "the oversized row was never published"
        with engine.connect() as connection:
            [parked] = connection.execute(select(dead_letter_table(table))).all()
            [counted] = connection.execute(
                text(f"SELECT attempts FROM {table} WHERE id = :id"), {"id": parked.outbox_id}
            ).scalars()
        assert "refused 2 times" in parked.reason
        assert "MSG_SIZE_TOO_LARGE" in parked.reason
        assert counted == 2, "the parked row's attempts agree with its reason"
    finally:
        Bridged(bus, [relay]).close()
        relay.engine.dispose()


def test_a_relay_refuses_a_bus_with_a_fallback(tmp_path):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": "memory://", "fallback": "redis://x"}
        )
    )
    try:
        with pytest.raises(ConfigurationError, match=r"without backends\.fallback"):
            OutboxRelay(bus, f"sqlite:///{tmp_path / 'app.db'}")
    finally:
        bus.close()
