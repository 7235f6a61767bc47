"""The outbox relay, PostgreSQL to Kafka: a hand-written psycopg + confluent-kafka loop vs
Interchange's OutboxRelay, one run, same database and broker, same rows.

    raw loop     BEGIN; SELECT ... ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED; produce each
                 (acks=all, idempotent, key = aggregate id, one ce_id header); flush;
                 UPDATE ... SET sent_at; COMMIT — until the table is empty
    raw + CE     the same loop producing the CloudEvents headers Interchange writes (what a
                 consumer needs to decode the record), as issue 15 compares publish_many
    Interchange  OutboxRelay.start() until every row was relayed: the same, plus decoding
                 and validating every payload against its contract, CloudEvents headers,
                 order per aggregate across relays, dead-lettering of bad rows; a round's
                 marks commit while the next round publishes
    one by one   OutboxRelay.relay_once() until it is empty: the same rounds, each committed
                 before the next starts (the bench's first cut; shows what pipelining gives)

Each side gets a fresh outbox of the same rows (about 100-byte payloads, 100 aggregates).
Compare ratios, not absolute rates: this machine is noisy.

    .venv/bin/python bench/outbox_relay.py [--rows 20000] [--batch 500] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime

import psycopg
from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from interchange import Bus, Event, Settings
from interchange.connectors.sql import OutboxRelay, create_outbox, engine_for, outbox_table

POSTGRES = os.environ.get(
    "INTERCHANGE_POSTGRES_URL", "postgresql://interchange:interchange@127.0.0.1:5432/interchange"
)
KAFKA = os.environ.get("INTERCHANGE_BACKENDS__EVENTS", "kafka://127.0.0.1:9092")


class StockMoved(Event, name="bench.outbox.stock_moved", version=1):
    sku: str
    warehouse: str
    quantity: int
    note: str


def fill(table: str, rows: int) -> None:
    """A fresh outbox with ``rows`` rows, written in one transaction."""
    engine = engine_for(POSTGRES)
    create_outbox(engine, table)
    values = [
        {
            "message_id": str(uuid.uuid4()),
            "aggregate_type": "sku",
            "aggregate_id": f"sku-{n % 100}",
            "contract": StockMoved.contract_name,
            "version": 1,
            "payload": StockMoved(
                sku=f"sku-{n % 100}", warehouse="w1", quantity=n, note="x" * 30
            ).model_dump_json(),
        }
        for n in range(rows)
    ]
    with engine.begin() as connection:
        connection.execute(outbox_table(table).insert(), values)
    # settled before timing: otherwise autovacuum analyzes the fresh table during one side's
    # run and not the other's (the largest source of noise between sides, measured)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def drop(table: str) -> None:
    engine = engine_for(POSTGRES)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}, {table}_dead_letters"))
        connection.execute(text(f"DROP FUNCTION IF EXISTS {table}_commit_seq()"))
    engine.dispose()


def raw_loop(table: str, topic: str, batch: int, cloudevents: bool = False) -> tuple[int, float]:
    """(rows relayed, seconds), timed after connecting and creating the topic (warm-up)."""
    producer = Producer(
        {
            "bootstrap.servers": KAFKA.removeprefix("kafka://"),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    producer.produce(topic, value=b"warm-up")
    assert producer.flush(30) == 0
    sent = 0
    with psycopg.connect(POSTGRES) as connection:
        started = time.perf_counter()
        while True:
            with connection.transaction():
                rows = connection.execute(
                    f"SELECT id, message_id, aggregate_id, payload FROM {table} "
                    "WHERE sent_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                    (batch,),
                ).fetchall()
                if not rows:
                    return sent, time.perf_counter() - started
                stamp = datetime.now(UTC).isoformat()
                for _, message_id, aggregate_id, payload in rows:
                    headers: dict[str, str | bytes | None] = {"ce_id": message_id}
                    if cloudevents:
                        headers.update(
                            {
                                "ce_source": "interchange",
                                "ce_type": StockMoved.contract_name,
                                "ce_specversion": "1.0",
                                "ce_time": stamp,
                                "ce_dataversion": "1",
                                "content-type": "application/json",
                                "ce_partitionkey": aggregate_id,
                            }
                        )
                    producer.produce(
                        topic, value=payload.encode(), key=aggregate_id.encode(), headers=headers
                    )
                assert producer.flush(30) == 0, "records unacknowledged"
                connection.execute(
                    f"UPDATE {table} SET sent_at = now() WHERE id = ANY(%s)",
                    ([row[0] for row in rows],),
                )
                sent += len(rows)


def interchange_relay(
    table: str, prefix: str, batch: int, rows: int, pipelined: bool = True
) -> tuple[int, float]:
    """(rows relayed, seconds), timed after connecting and creating the topic (warm-up). The
    relay runs as deployed (``start()``, whose rounds commit while the next one publishes), or
    round after round with ``relay_once()`` when not ``pipelined``."""
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": KAFKA}, channel_prefix=prefix
        )
    )
    bus.publish(StockMoved(sku="warm-up", warehouse="w0", quantity=0, note=""))
    relay = OutboxRelay(bus, POSTGRES, table=table, batch=batch)
    relay.pending()  # connects
    sent = 0
    started = time.perf_counter()
    if pipelined:
        relay.start()
        deadline = time.monotonic() + 120
        while relay.relayed < rows and time.monotonic() < deadline:
            time.sleep(0.002)
        took = time.perf_counter() - started
        relay.stop()
        sent = relay.relayed
    else:
        while moved := relay.relay_once():
            sent += moved
        took = time.perf_counter() - started
    relay.engine.dispose()
    bus.close()
    return sent, took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"outbox relay, PostgreSQL -> Kafka, {args.rows} rows, batch {args.batch}")
    columns = (
        "run",
        "raw rows/s",
        "raw + CE rows/s",
        "one by one rows/s",
        "Interchange rows/s",
        "x raw",
        "x raw+CE",
    )
    for column in columns:
        table.add_column(column, justify="right")
    sides = ("raw", "raw+ce", "one-by-one", "interchange")
    for run in range(1, args.runs + 1):
        # each run starts with another side: the database and the broker slow down as a run
        # goes on (WAL, checkpoints, autovacuum), and no side should always come last
        rates: dict[str, float] = {}
        for side in sides[run - 1 :] + sides[: run - 1]:
            name = f"bench_outbox_{uuid.uuid4().hex[:8]}"
            fill(name, args.rows)
            if side.startswith("raw"):
                topic = f"bench-outbox-raw-{name}"
                sent, took = raw_loop(name, topic, args.batch, cloudevents=side == "raw+ce")
            else:
                pipelined = side == "interchange"
                sent, took = interchange_relay(name, f"{name}.", args.batch, args.rows, pipelined)
            rates[side] = sent / took
            assert sent == args.rows, f"{side} relayed {sent} of {args.rows}"
            drop(name)
        raw, raw_ce, one_by_one, ours = (rates[side] for side in sides)
        table.add_row(
            str(run),
            f"{raw:,.0f}",
            f"{raw_ce:,.0f}",
            f"{one_by_one:,.0f}",
            f"{ours:,.0f}",
            f"{ours / raw:.2f}x",
            f"{ours / raw_ce:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
