"""Key-ordered concurrency on Kafka: a handler that waits 10 ms (a slow legacy call), one group
member with ``concurrency=1`` against ``concurrency=32``, on the same topic, one run.

    .venv/bin/python bench/kafka_concurrency.py      # INTERCHANGE_BACKENDS__EVENTS

Each case reads the topic in a fresh group from the start; per-key order is checked on every
record (a record of a key never runs before the previous one of that key finished). Target
(issue 15): concurrency 32 at ≥ 25x the throughput of concurrency 1.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Event


class Scanned(Event, name="bench.kafka.scanned", version=1):
    parcel: str
    seq: int


def run(url: str, prefix: str, concurrency: int, count: int, wait: float) -> tuple[float, int]:
    """Events/s over the first ``count`` records, and how many broke their key's order."""
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://bench", "events": url}, channel_prefix=prefix
        )
    )
    lock, done = threading.Lock(), threading.Event()
    last: dict[str, int] = {}
    running: set[str] = set()
    state = {"seen": 0, "first": 0.0, "disorder": 0}

    @bus.subscribes(Scanned, group=f"bench-{uuid.uuid4().hex[:8]}", concurrency=concurrency)
    def scan(evt: Scanned) -> None:
        with lock:
            if evt.parcel in running or last.get(evt.parcel, -1) > evt.seq:
                state["disorder"] += 1
            running.add(evt.parcel)
            if state["seen"] == 0:
                state["first"] = time.perf_counter()
        time.sleep(wait)  # the legacy system's answer
        with lock:
            running.discard(evt.parcel)
            last[evt.parcel] = evt.seq
            state["seen"] += 1
            if state["seen"] == count:
                state["rate"] = (count - 1) / (time.perf_counter() - state["first"])
                done.set()

    with bus:
        if not done.wait(600):
            raise RuntimeError(f"saw {state['seen']} of {count}")
    bus.close()
    return state["rate"], state["disorder"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("INTERCHANGE_BACKENDS__EVENTS", "kafka://127.0.0.1:9092")
    )
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--wait", type=float, default=0.010, help="the handler's wait, s")
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    publisher = Bus(
        Settings.without_environment(
            backends={"commands": "memory://bench", "events": args.url}, channel_prefix=prefix
        )
    )
    total = 6_000
    publisher.publish_many(
        [Scanned(parcel=f"p{n % args.keys}", seq=n) for n in range(total)],
        keys=[f"p{n % args.keys}" for n in range(total)],
    )
    publisher.close()
    table = Table(title=f"Kafka, a handler waiting {args.wait * 1000:.0f} ms, {args.keys} keys")
    for column in ("concurrency", "events/s", "x concurrency 1", "out of key order"):
        table.add_column(column, justify="right")
    base = None
    for concurrency, count in ((1, 300), (8, 2_000), (32, total)):
        rate, disorder = run(args.url, prefix, concurrency, count, args.wait)
        base = base or rate
        table.add_row(str(concurrency), f"{rate:,.0f}", f"{rate / base:.1f}", str(disorder))
    Console().print(table)


if __name__ == "__main__":
    main()
