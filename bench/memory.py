"""Memory under a large backlog, one run on the local brokers.

    .venv/bin/python bench/memory.py [--count N] [--seconds S] [--backends rabbitmq,kafka,redis]

    publish_many of N events (Kafka)   peak RSS of the publishing process above what its own
                                       list of N events takes (sampled every 10 ms)
    a consumer facing a backlog of N   peak RSS (VmHWM) of a fresh process whose handler runs
                                       while N messages wait: a RabbitMQ queue, a Kafka topic,
                                       a Redis stream; for --seconds or until it drained them

The in-memory backend is left out: its broker is the process itself, so a backlog of N is N
messages in that process by design.

Targets (issue 15): every consumer under 200 MB RSS; publish_many of 1,000,000 events does not
hold them all (encoded) at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Command, Event

URLS = {
    "rabbitmq": os.environ.get(
        "INTERCHANGE_BACKENDS__COMMANDS", "amqp://guest:guest@127.0.0.1:5672//"
    ),
    "kafka": os.environ.get("INTERCHANGE_BACKENDS__EVENTS", "kafka://127.0.0.1:9092"),
    "redis": os.environ.get("INTERCHANGE_BACKENDS__FALLBACK", "redis://127.0.0.1:6379/0"),
}
PAGE = os.sysconf("SC_PAGE_SIZE")


class Booked(Command, name="bench.memory.booked_cmd", version=1):
    booking_id: str
    seat: int
    note: str


class Seated(Event, name="bench.memory.seated", version=1):
    booking_id: str
    seat: int
    note: str


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def peak_mb() -> float:
    """The process's peak resident set so far (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class Sampler:
    """The largest RSS seen between start and stop, sampled every 10 ms."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> Sampler:
        self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def settings(kind: str, url: str, prefix: str) -> Settings:
    side = "commands" if kind == "commands" else "events"
    other = "events" if side == "commands" else "commands"
    return Settings.without_environment(
        backends={side: url, other: f"memory://{uuid.uuid4().hex}"}, channel_prefix=prefix
    )


def fill(backend: str, prefix: str, count: int) -> dict[str, float]:
    """Put ``count`` messages in the backlog; for Kafka, the publish_many measurement too."""
    kind = "events" if backend == "kafka" else "commands"
    bus = Bus(settings(kind, URLS[backend], prefix))
    with bus:
        if kind == "commands":
            bus.send_many([Booked(booking_id="b-0", seat=0, note="warm")])  # declares the queue
        before = rss_mb()
        contracts = [
            (Seated if kind == "events" else Booked)(
                booking_id=f"b-{i:08d}", seat=i % 300, note="x" * 40
            )
            for i in range(count)
        ]
        listed = rss_mb()
        started = time.perf_counter()
        with Sampler() as sampler:
            if kind == "events":
                bus.publish_many(contracts)  # type: ignore[arg-type]
            else:
                bus.send_many(contracts)  # type: ignore[arg-type]
        took = time.perf_counter() - started
    return {
        "list_mb": listed - before,
        "above_list_mb": sampler.peak - listed,
        "rate": count / took,
    }


def consume(backend: str, prefix: str, count: int, seconds: float) -> dict[str, float]:
    """In a fresh process (its peak is its own): handle until ``count`` or ``seconds``."""
    script = [sys.executable, __file__, "--consumer", backend, prefix, str(count), str(seconds)]
    answer = subprocess.run(script, check=True, capture_output=True, text=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def consumer(backend: str, prefix: str, count: int, seconds: float) -> None:
    kind = "events" if backend == "kafka" else "commands"
    bus = Bus(settings(kind, URLS[backend], prefix))
    handled = 0
    done = threading.Event()

    def handle(_: object, __: object) -> None:
        nonlocal handled
        handled += 1
        if handled >= count:
            done.set()

    if kind == "events":
        bus.subscribes(Seated, group="memory-bench")(handle)
    else:
        bus.handles(Booked)(handle)
    idle = rss_mb()
    started = time.perf_counter()
    with bus:
        done.wait(seconds)
    took = time.perf_counter() - started
    print(
        json.dumps(
            {"idle_mb": idle, "peak_mb": peak_mb(), "handled": handled, "rate": handled / took}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--backends", default="rabbitmq,kafka,redis")
    parser.add_argument(
        "--whole-batch",
        action="store_true",
        help="encode a publish_many's batch at once, as before chunks (to compare)",
    )
    parser.add_argument("--consumer", nargs=4, metavar=("BACKEND", "PREFIX", "COUNT", "SECONDS"))
    args = parser.parse_args()
    if args.consumer:
        backend, prefix, count, seconds = args.consumer
        consumer(backend, prefix, int(count), float(seconds))
        return
    if args.whole_batch:
        import interchange.chunks

        interchange.chunks.CHUNK = args.count
    console = Console(width=170)
    table = Table(title=f"memory, backlog of {args.count:,} (~100-byte bodies)")
    for column in (
        "backend",
        "fill",
        "list of N",
        "publishing above it",
        "consumer idle",
        "consumer peak",
        "handled",
        "target",
    ):
        table.add_column(column)
    for backend in args.backends.split(","):
        prefix = f"mem-{uuid.uuid4().hex[:8]}."
        with console.status(f"{backend}: filling the backlog"):
            filled = fill(backend, prefix, args.count)
        with console.status(f"{backend}: consuming"):
            used = consume(backend, prefix, args.count, args.seconds)
        table.add_row(
            backend,
            f"{filled['rate']:,.0f}/s",
            f"{filled['list_mb']:.0f} MB",
            f"{filled['above_list_mb']:.0f} MB",
            f"{used['idle_mb']:.0f} MB",
            f"{used['peak_mb']:.0f} MB",
            f"{used['handled']:,.0f} at {used['rate']:,.0f}/s",
            "met" if used["peak_mb"] < 200 else "MISSED (200 MB)",
        )
        console.print(table)


if __name__ == "__main__":
    main()
