"""What commit order costs the applications writing the outbox (PostgreSQL): N writers in
threads, each on its own psycopg connection, committing transactions of R plain-SQL outbox
rows for D seconds, into an outbox with its commit-order trigger and into one without (the
trigger and its index dropped, the index of unsent rows by id back: the outbox as the version
before it was), alternately, ``--runs`` times. A pgbench-like loop;
the server's fsync and synchronous_commit are what they are (this machine: on, on).

    .venv/bin/python bench/outbox_writers.py [--writers 8] [--rows 1 4] [--seconds 5] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from interchange.connectors.sql import create_outbox, engine_for

POSTGRES = os.environ.get(
    "INTERCHANGE_POSTGRES_URL", "postgresql://interchange:interchange@127.0.0.1:5432/interchange"
)
INSERT = (
    "INSERT INTO {table} (aggregate_type, aggregate_id, contract, version, payload) "
    "VALUES ('sku', %s, 'bench.outbox.stock_moved', 1, %s)"
)
PAYLOAD = '{"sku": "s", "warehouse": "w", "quantity": 1, "note": "' + "n" * 40 + '"}'


def outbox(ordered: bool) -> str:
    table = f"bench_writers_{uuid.uuid4().hex[:8]}"
    engine = engine_for(POSTGRES)
    create_outbox(engine, table)
    if not ordered:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER {table}_commit_seq ON {table}"))
            connection.execute(text(f"DROP INDEX {table}_unsent_in_commit_order"))
            connection.execute(
                text(f"CREATE INDEX {table}_unsent ON {table} (id) WHERE sent_at IS NULL")
            )
    engine.dispose()
    return table


def drop(table: str) -> None:
    engine = engine_for(POSTGRES)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {table}, {table}_dead_letters"))
        connection.execute(text(f"DROP FUNCTION IF EXISTS {table}_commit_seq()"))
    engine.dispose()


def run(table: str, writers: int, rows: int, seconds: float) -> tuple[int, list[float]]:
    """Transactions committed, and each one's commit latency (seconds)."""
    stop = threading.Event()
    counts, latencies = [0] * writers, [[] for _ in range(writers)]

    def write(n: int) -> None:
        with psycopg.connect(POSTGRES) as db:
            statement = INSERT.format(table=table)
            while not stop.is_set():
                with db.cursor() as cur:
                    for k in range(rows):
                        cur.execute(statement, (f"sku-{(n * 7 + k) % 100}", PAYLOAD))
                started = time.perf_counter()
                db.commit()
                latencies[n].append(time.perf_counter() - started)
                counts[n] += 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts), sorted(x for each in latencies for x in each)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    table = Table(title=f"{args.writers} writers, {args.seconds:.0f} s each, PostgreSQL")
    for column in ("run", "rows/tx", "outbox", "tx/s", "rows/s", "commit p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    cases = [(n, r, o) for n in range(args.runs) for r in args.rows for o in (False, True)]
    for n, rows, ordered in cases:
        name = outbox(ordered)
        try:
            done, latencies = run(name, args.writers, rows, args.seconds)
        finally:
            drop(name)
        table.add_row(
            str(n + 1),
            str(rows),
            "commit order" if ordered else "without",
            f"{done / args.seconds:,.0f}",
            f"{done * rows / args.seconds:,.0f}",
            f"{latencies[len(latencies) // 2] * 1000:.1f}",
            f"{latencies[int(len(latencies) * 0.99)] * 1000:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
