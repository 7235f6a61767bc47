"""Confirmed command throughput on RabbitMQ: raw kombu vs Interchange, one run, same broker.

    raw kombu, no confirms            the ceiling: nothing is known to be stored
    raw kombu, no confirms + headers  the same with the CloudEvents headers Interchange writes
    raw kombu, per-message confirms   kombu's confirm_publish=True: waits for each ack
    raw py-amqp, pipelined confirms   the same guarantee as send_many (persistent, confirmed,
                                      the same headers, a window of 500): the broker's ceiling
    Interchange send                  one confirmed command per call (codec + envelope)
    Interchange send_many             confirms pipelined in a window
    Interchange batch loop            bus.batch(): one call per command, stored at the block's end
    raw kombu consumer                basic_consume at prefetch 100, JSON-decode each body, ack
    Interchange consume               a handler at prefetch 100: decode, validate, dedupe, ack

One-by-one cases (per-message confirms, Interchange send) run in three alternating rounds:
each waits on the broker's disk, whose pace drifts within a run.
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


def raw_pipelined(url: str, queue: str, count: int, window: int = 500) -> float:
    """py-amqp with publisher confirms drained in a window, as send_many does."""
    import amqp

    message = amqp.Message(
        _payload(0).model_dump_json().encode(),
        delivery_mode=2,
        application_headers=_headers(),
        content_type="application/json",
        message_id="bench",
    )
    with Connection(url) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.confirm_select()
        acked = [0]
        channel.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, tag))

        def run() -> None:
            for sent in range(1, count + 1):
                channel.basic_publish(message, exchange="", routing_key=queue)
                while sent - acked[0] > window:
                    connection.drain_events(timeout=10)
            while acked[0] < count:
                connection.drain_events(timeout=10)

        rate = _timed(count, run)
        channel.queue_delete(queue)
        return rate


def alternating(*cases: Callable[[int], float], count: int, rounds: int = 3) -> list[float]:
    """Each case's rate over ``rounds`` rounds of ``count / rounds``, the cases taking turns."""
    each = max(1, count // rounds)
    seconds = [0.0] * len(cases)
    for _ in range(rounds):
        for index, case in enumerate(cases):
            seconds[index] += each / case(each)
    return [each * rounds / spent for spent in seconds]


def interchange(url: str, prefix: str, count: int, batch: int, loop: bool = False) -> float:
    bus = Bus(
        Settings.without_environment(
            backends={"commands": url, "events": "memory://bench"}, channel_prefix=prefix
        )
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
    with Connection(url) as connection:  # as raw_kombu does: each round on an empty queue
        connection.channel().queue_purge(prefix + Bench.contract_name)
    return rate


def raw_consume(url: str, queue: str, count: int) -> float:
    """Fill ``queue`` with ``count`` bodies, then read them back at prefetch 100."""
    import json

    body = _payload(0).model_dump_json().encode()
    with Connection(url) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        producer = Producer(channel)
        for _ in range(count):
            producer.publish(body, routing_key=queue, delivery_mode=2, retry=False)
        seen = [0]

        def on_message(message: object) -> None:
            json.loads(message.body)  # type: ignore[attr-defined]
            channel.basic_ack(message.delivery_tag)  # type: ignore[attr-defined]
            seen[0] += 1

        channel.basic_qos(0, 100, False)
        channel.basic_consume(queue, callback=on_message)

        def run() -> None:
            while seen[0] < count:
                connection.drain_events(timeout=10)

        rate = _timed(count, run)
        channel.queue_delete(queue)
        return rate


def interchange_consume(url: str, prefix: str, count: int) -> float:
    import threading

    bus = Bus(
        Settings.without_environment(
            backends={"commands": url, "events": "memory://bench"}, channel_prefix=prefix
        )
    )
    bus.send_many([_payload(i) for i in range(count)])
    seen, done = [0], threading.Event()

    @bus.handles(Bench)
    def handle(cmd: Bench) -> None:
        seen[0] += 1
        if seen[0] == 1:
            seen.append(time.perf_counter())  # type: ignore[arg-type]
        if seen[0] == count:
            done.set()

    with bus:
        done.wait(300)
    rate = (count - 1) / (time.perf_counter() - seen[1])
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
    per_message, one_by_one = alternating(
        lambda n: raw_kombu(args.url, queue, n, True),
        lambda n: interchange(args.url, prefix + "one.", n, 1),
        count=args.slow_count,
    )
    results = {
        "raw kombu, no confirms": raw_kombu(args.url, queue, args.count, confirm=False),
        "raw kombu, no confirms + CE headers": raw_kombu(
            args.url, queue, args.count, confirm=False, headers=True
        ),
        "raw kombu, per-message confirms": per_message,
        "Interchange send (confirmed)": one_by_one,
        "raw py-amqp, pipelined confirms + CE headers": raw_pipelined(
            args.url, queue + ".pipelined", args.count
        ),
        f"Interchange send_many ({args.batch}, confirmed)": interchange(
            args.url, prefix + "many.", args.count, args.batch
        ),
        "Interchange batch loop (send per call)": interchange(
            args.url, prefix + "loop.", args.count, 1, loop=True
        ),
        "raw kombu consumer (json + ack), prefetch 100": raw_consume(
            args.url, queue + ".consume", args.count
        ),
        "Interchange consume, prefetch 100": interchange_consume(
            args.url, prefix + "consume.", args.count
        ),
    }
    with Connection(args.url) as connection:  # leave the broker as we found it
        channel = connection.channel()
        for name in (
            queue,
            prefix + "one." + Bench.contract_name,
            prefix + "many." + Bench.contract_name,
            prefix + "loop." + Bench.contract_name,
            prefix + "consume." + Bench.contract_name,
        ):
            channel.queue_delete(name)
            channel.queue_delete(name + ".dlq")
    ceiling = results["raw kombu, no confirms"]
    pipelined = results["raw py-amqp, pipelined confirms + CE headers"]
    table = Table(title=f"RabbitMQ confirmed sends, ~100-byte bodies ({args.url.split('@')[-1]})")
    columns = ("case", "msg/s", "x raw no-confirm", "x raw per-message", "x raw pipelined")
    for column in columns:
        table.add_column(column, justify="right" if column != "case" else "left")
    for case, rate in results.items():
        table.add_row(
            case,
            f"{rate:,.0f}",
            f"{rate / ceiling:.2f}",
            f"{rate / per_message:.2f}",
            f"{rate / pipelined:.2f}",
        )
    raw_read = results["raw kombu consumer (json + ack), prefetch 100"]
    ours = results["Interchange consume, prefetch 100"]
    Console().print(f"consume: Interchange {ours / raw_read:.2f}x the raw kombu consumer")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
