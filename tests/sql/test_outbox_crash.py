"""The relay killed at its worst point — a batch published to Kafka, not yet marked sent —
then restarted: every row arrives, and a consumer that dedupes handles each once, in order
per aggregate."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from interchange import Bus, Settings
from interchange.connectors.sql import OutboxRelay, add_to_outbox, create_outbox
from interchange.testing import Recorder
from tests.sql.test_outbox import OrderPlaced

ROOT = Path(__file__).resolve().parents[2]


def _relay_process(postgres_url, table, prefix, kafka_url, die_at, mode):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sql.relay_worker",
            postgres_url,
            table,
            prefix,
            kafka_url,
            str(die_at),
            mode,
        ],
        cwd=ROOT,
        timeout=120,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("mode", ["rounds", "running"])
def test_a_relay_killed_between_publishing_and_marking_loses_nothing(
    postgres, postgres_url, kafka_url, mode
):
    engine, table = postgres
    create_outbox(engine, table)
    ids = []
    with engine.begin() as connection:
        for n in range(1000):
            ids.append(
                add_to_outbox(
                    connection,
                    OrderPlaced(order=f"a{n % 10}", seq=n),
                    aggregate_type="order",
                    aggregate_id=f"a{n % 10}",
                    table=table,
                )
            )
    prefix = f"crash-{uuid.uuid4().hex[:8]}."
    killed = _relay_process(postgres_url, table, prefix, kafka_url, 3, mode)
    assert killed.returncode == -9, killed.stderr
    probe = OutboxRelay(Bus(Settings.without_environment()), engine, table=table)
    left = probe.pending()
    # round by round: two batches marked, the third published, not marked; running: the
    # second batch's marks may still have been committing when the third was published
    assert left in ((800,) if mode == "rounds" else (800, 900)), left
    finished = _relay_process(postgres_url, table, prefix, kafka_url, 0, mode)
    assert finished.returncode == 0, finished.stderr
    assert probe.pending() == 0

    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url}, channel_prefix=prefix
        )
    )
    records = list(bus.events.replay(bus.topic_of(OrderPlaced)))
    assert sorted({r.message.id for r in records}) == sorted(ids)
    assert len(records) == 300 + left, "what was not marked sent was published twice"
    handled = Recorder()
    bus.subscribes(OrderPlaced, group="billing")(handled)
    with bus:
        handled.wait_for(1000, timeout=60)
    assert sorted(e.seq for e in handled.contracts) == list(range(1000))  # each once
    for aggregate in range(10):
        mine = [e.seq for e in handled.contracts if e.order == f"a{aggregate}"]
        assert mine == sorted(mine)
    bus.close()
