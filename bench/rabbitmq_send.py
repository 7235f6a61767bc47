"""Confirmed command throughput on RabbitMQ: raw kombu vs Interchange, one run, same broker.

    raw kombu, no confirms            the ceiling: nothing is known to be stored
    raw kombu, no confirms + headers  the same with the CloudEvents headers Interchange writes
    raw kombu, per-message confirms   kombu's confirm_publish=True: waits for each ack
    Interchange send                  one confirmed command per call (codec + envelope)
    Interchange send_many             confirms pipelined in a window
    Interchange batch loop            bus.batch(): one call per command, stored at the block's end

The issue's bar: send_many >= 0.5 x raw kombu without confirms.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable

from kombu import Connection, Producer
from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Command


class Bench(Command, name="bench.rabbitmq.book", version=1):
    booking_id: str
    seat: int
    note: str


def _payload(i: int) -> Bench:
    return Bench(booking_id=f"b-{i:08d}", seat=i % 300, note="x" * 40)  # ~100-byte body


def _timed(count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def _headers() -> dict[str, str]:
    from interchange.contracts import Codec

    [(headers, _)] = Codec("cloudEvents_").encode_many(
        [_payload(0)], [str(uuid.uuid4())], [None], source="bench"
    )
    headers.pop("content-type")
    return headers


def raw_kombu(url: str, queue: str, count: int, confirm: bool, headers: bool = False) -> float:
    body = _payload(0).model_dump_json().encode()
    options = {"confirm_publish": True} if confirm else {}
    extra = {"headers": _headers()} if headers else {}
    with Connection(url, transport_options=options) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        producer = Producer(channel)

        def run() -> None:
            for _ in range(count):
                producer.publish(
                    body,
                    routing_key=queue,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=False,
                    **extra,
                )

        rate = _timed(count, run)
        channel.queue_purge(queue)
        return rate


def interchange(url: str, prefix: str, count: int, batch: int, loop: bool = False) -> float:
    bus = Bus(
        Settings(backends={"commands": url, "events": "memory://bench"}, channel_prefix=prefix)
    )
    commands = [_payload(i) for i in range(count)]
    bus.send(commands[0])  # connect and declare outside the timing, as for raw kombu

    def run() -> None:
        if loop:
            with bus.batch(max_pending=count) as held:
                for command in commands:
                    held.send(command)
        elif batch <= 1:
            for command in commands:
                bus.send(command)
        else:
            for start in range(0, count, batch):
                bus.send_many(commands[start : start + batch])

    rate = _timed(count, run)
    bus.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "INTERCHANGE_BACKENDS__COMMANDS", "amqp://guest:guest@127.0.0.1:5672//"
        ),
    )
    parser.add_argument("--count", type=int, default=20_000, help="messages per fast case")
    parser.add_argument("--slow-count", type=int, default=3_000, help="per-message confirm cases")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="commands per send_many call (default: all in one call)",
    )
    args = parser.parse_args()
    args.batch = args.batch or args.count
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}."
    queue = f"bench-{run_id}.raw"
    results = {
        "raw kombu, no confirms": raw_kombu(args.url, queue, args.count, confirm=False),
        "raw kombu, no confirms + CE headers": raw_kombu(
            args.url, queue, args.count, confirm=False, headers=True
        ),
        "raw kombu, per-message confirms": raw_kombu(args.url, queue, args.slow_count, True),
        "Interchange send (confirmed)": interchange(args.url, prefix + "one.", args.slow_count, 1),
        f"Interchange send_many ({args.batch}, confirmed)": interchange(
            args.url, prefix + "many.", args.count, args.batch
        ),
        "Interchange batch loop (send per call)": interchange(
            args.url, prefix + "loop.", args.count, 1, loop=True
        ),
    }
    with Connection(args.url) as connection:  # leave the broker as we found it
        channel = connection.channel()
        for name in (
            queue,
            prefix + "one." + Bench.contract_name,
            prefix + "many." + Bench.contract_name,
            prefix + "loop." + Bench.contract_name,
        ):
            channel.queue_delete(name)
            channel.queue_delete(name + ".dlq")
    ceiling = results["raw kombu, no confirms"]
    per_message = results["raw kombu, per-message confirms"]
    table = Table(title=f"RabbitMQ confirmed sends, ~100-byte bodies ({args.url.split('@')[-1]})")
    for column in ("case", "msg/s", "x raw no-confirm", "x raw per-message confirm"):
        table.add_column(column, justify="right" if column != "case" else "left")
    for case, rate in results.items():
        table.add_row(case, f"{rate:,.0f}", f"{rate / ceiling:.2f}", f"{rate / per_message:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
