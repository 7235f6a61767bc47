"""Redis Streams: raw redis-py against Interchange, one run, same server.

    .venv/bin/python bench/redis_streams.py      # INTERCHANGE_BACKENDS__FALLBACK or redis://127.0.0.1:6379/0

    raw XADD, pipelined              every entry in one pipeline (the ceiling)
    Interchange send_many            commands on a Redis backend (one pipeline, answered)
    raw XREADGROUP loop              count=100, XACK per batch
    Interchange consume              a handler on the queue: decode, dedupe, XACK
    spool (RabbitMQ down)            send_many while the primary refuses: into the Redis spool
    drain (RabbitMQ back)            the spool forwarded to RabbitMQ, confirmed, then removed

Targets (issue 15): send_many, spooling and draining each >= 0.5x raw pipelined XADD.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

import redis
from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Command


class Bench(Command, name="bench.redis.book", version=1):
    booking_id: str
    seat: int
    note: str


def _payload(i: int) -> Bench:
    return Bench(booking_id=f"b-{i:08d}", seat=i % 300, note="x" * 40)  # ~100-byte body


def _rate(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def raw_xadd(client: redis.Redis, stream: str, count: int, same_fields: bool = False) -> float:
    """Two fields an entry (body and id), or ``same_fields``: the CloudEvents attributes
    Interchange writes beside the body."""
    body = _payload(0).model_dump_json().encode()
    fields: dict[str, str | bytes] = {"data": body}
    if same_fields:
        from interchange.contracts import Codec

        [(headers, _)] = Codec("ce_").encode_many(
            [_payload(0)], [str(uuid.uuid4())], [None], source="bench"
        )
        fields.update(headers)
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.xadd(stream, {**fields, "id": f"m-{i}"})
        pipe.execute()
    rate = _rate(count, started)
    client.delete(stream)
    return rate


def raw_xreadgroup(client: redis.Redis, stream: str, count: int) -> float:
    client.xgroup_create(stream, "raw", id="0")
    seen = 0
    started = time.perf_counter()
    while seen < count:
        answer = client.xreadgroup("raw", "c1", {stream: ">"}, count=100, block=1000)
        for _, entries in answer or []:
            ids = [entry_id for entry_id, _ in entries]
            client.xack(stream, "raw", *ids)
            seen += len(ids)
    return _rate(count, started)


def interchange_send_many(url: str, prefix: str, count: int) -> tuple[float, float]:
    """(send_many rate, consume rate)."""
    bus = Bus(
        Settings.without_environment(
            backends={"commands": url, "events": "memory://b"}, channel_prefix=prefix
        )
    )
    commands = [_payload(i) for i in range(count)]
    bus.send(commands[0])
    started = time.perf_counter()
    bus.send_many(commands)
    sent = _rate(count, started)
    seen, first, done = [0], [0.0], threading.Event()

    @bus.handles(Bench)
    def handle(cmd: Bench) -> None:
        seen[0] += 1
        if seen[0] == 1:
            first[0] = time.perf_counter()
        if seen[0] == count + 1:
            done.set()

    with bus:
        done.wait(300)
    bus.close()
    return sent, _rate(count, first[0])


def spool_and_drain(amqp: str, spool: str, prefix: str, count: int) -> tuple[float, float]:
    down = Bus(
        Settings.without_environment(
            backends={"commands": "amqp://guest:guest@127.0.0.1:1//", "events": "memory://b",
                      "fallback": spool},
            channel_prefix=prefix,
        )
    )  # fmt: skip
    commands = [_payload(i) for i in range(count)]
    down.send(commands[0])  # opens the circuit: the rest go straight to the spool
    started = time.perf_counter()
    for start in range(0, count, 1000):
        down.send_many(commands[start : start + 1000])
    spooled = _rate(count, started)
    down.close()
    back = Bus(
        Settings.without_environment(
            backends={"commands": amqp, "events": "memory://b", "fallback": spool},
            channel_prefix=prefix,
        )
    )
    assert back.drainer is not None
    started = time.perf_counter()
    forwarded = back.drainer.drain()
    drained = _rate(forwarded, started)
    back.close()
    return spooled, drained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("INTERCHANGE_BACKENDS__FALLBACK", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument(
        "--amqp",
        default=os.environ.get(
            "INTERCHANGE_BACKENDS__COMMANDS", "amqp://guest:guest@127.0.0.1:5672//"
        ),
    )
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(args.url)
    raw_stream = f"bench-{run}.raw"
    # the raw appends run before and after Interchange's, and count by their mean: the
    # server's pace drifts within a run (single runs put send_many at 0.37x and 0.50x)
    xadd = raw_xadd(client, raw_stream, args.count)
    same = raw_xadd(client, raw_stream, args.count, same_fields=True)
    raw_xadd(client, raw_stream, 1)
    client.xtrim(raw_stream, maxlen=0)
    for i in range(args.count):  # what the raw reader reads
        client.xadd(raw_stream, {"data": b"x" * 100, "id": f"m-{i}"})
    xread = raw_xreadgroup(client, raw_stream, args.count)
    client.delete(raw_stream)
    sent, consumed = interchange_send_many(args.url, f"bench-{run}.ic.", args.count)
    spooled, drained = spool_and_drain(args.amqp, args.url, f"bench-{run}.spool.", args.count)
    xadd = (xadd + raw_xadd(client, raw_stream, args.count)) / 2
    same = (same + raw_xadd(client, raw_stream, args.count, same_fields=True)) / 2
    with __import__("kombu").Connection(args.amqp) as connection:
        connection.channel().queue_delete(f"bench-{run}.spool.{Bench.contract_name}")
    table = Table(title=f"Redis Streams, ~100-byte bodies, {args.count:,} messages")
    for column in ("case", "msg/s", "x raw", "x raw, same fields"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case, rate, raw in (
        ("raw XADD, pipelined", xadd, xadd),
        ("raw XADD, pipelined, the same fields as Interchange's", same, xadd),
        ("Interchange send_many", sent, xadd),
        ("raw XREADGROUP loop (+ XACK)", xread, xread),
        ("Interchange consume (decode, dedupe, XACK)", consumed, xread),
        ("spool: send_many, RabbitMQ down", spooled, xadd),
        ("drain: spool to RabbitMQ, confirmed", drained, xadd),
    ):
        same_work = f"{rate / same:.2f}" if raw is xadd else ""
        table.add_row(case, f"{rate:,.0f}", f"{rate / raw:.2f}", same_work)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
