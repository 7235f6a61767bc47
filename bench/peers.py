"""Interchange against FastStream 0.7.8 (RabbitBroker, KafkaBroker) on the same brokers and
payloads, one run: each case prints both rates and the ratio.

    .venv/bin/pip install 'faststream[rabbit,kafka]==0.7.8'   # bench only
    .venv/bin/python bench/peers.py                            # the brokers of compose/native/up

RabbitMQ: send one by one (each confirmed), a batch (Interchange send_many; FastStream's
publishes awaited together), consuming a filled queue (decode + ack), request/response round
trips one after another. Kafka: publish one by one (acknowledged), a batch (publish_many;
publish_batch), consuming a filled topic in a new group. Both sides send persistent messages to
durable queues and wait for the broker's confirms, except FastStream's requests, which it sends
non-persistent over direct reply-to (its default); about 100-byte JSON bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Command, Event


class Booking(Command, name="bench.peers.booking", version=1):
    booking_id: str
    seat: int
    note: str


class Reply(Command, name="bench.peers.reply", version=1):
    booking_id: str


class Boarded(Event, name="bench.peers.boarded", version=1):
    booking_id: str
    seat: int
    note: str


class Plain(BaseModel):  # FastStream's payload: the same fields, the same JSON
    booking_id: str
    seat: int
    note: str


def _fields(i: int) -> dict[str, Any]:
    return {"booking_id": f"b-{i:08d}", "seat": i % 300, "note": "x" * 40}


def _rate(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def _until(done: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the case did not finish")
        time.sleep(0.001)


# -- Interchange ------------------------------------------------------------------------------


def ours(amqp: str, kafka: str, count: int, slow: int) -> dict[str, float]:
    prefix = f"peers-{uuid.uuid4().hex[:8]}.ic."
    settings = Settings.without_environment(
        backends={"commands": amqp, "events": kafka}, channel_prefix=prefix
    )
    rates: dict[str, float] = {}
    bus = Bus(settings)
    bookings = [Booking(**_fields(i)) for i in range(count)]
    bus.send(bookings[0])  # connect and declare outside the timings
    started = time.perf_counter()
    for booking in bookings[:slow]:
        bus.send(booking)
    rates["rabbitmq send 1x1"] = _rate(slow, started)
    started = time.perf_counter()
    bus.send_many(bookings)
    rates["rabbitmq send batch"] = _rate(count, started)
    seen = [0]
    lock = threading.Lock()

    def consume(cmd: Booking) -> Reply | None:
        with lock:
            seen[0] += 1
        return Reply(booking_id=cmd.booking_id)

    bus.handles(Booking)(consume)
    total = 1 + slow + count
    with bus:
        _until(lambda: seen[0] >= 1)
        started = time.perf_counter()
        _until(lambda: seen[0] >= total)
        rates["rabbitmq consume"] = _rate(total - 1, started)
        bus.request(bookings[0], timeout=10)
        started = time.perf_counter()
        for booking in bookings[:slow]:
            bus.request(booking, timeout=10)
        rates["rabbitmq request/response"] = _rate(slow, started)
    bus.close()

    bus = Bus(settings)
    events = [Boarded(**_fields(i)) for i in range(count)]
    bus.publish(events[0])
    started = time.perf_counter()
    for event in events[:slow]:
        bus.publish(event)
    rates["kafka publish 1x1"] = _rate(slow, started)
    started = time.perf_counter()
    bus.publish_many(events)
    rates["kafka publish batch"] = _rate(count, started)
    got = [0, 0.0]

    @bus.subscribes(Boarded, group=f"bench-{uuid.uuid4().hex[:6]}")
    def board(evt: Boarded) -> None:
        with lock:
            got[0] += 1
            if got[0] == 1:
                got[1] = time.perf_counter()

    total = 1 + slow + count
    with bus:
        _until(lambda: got[0] >= total)
        rates["kafka consume"] = _rate(total - 1, float(got[1]))
    bus.close()
    return rates


# -- FastStream -------------------------------------------------------------------------------


async def theirs_rabbit(amqp: str, count: int, slow: int) -> dict[str, float]:
    from faststream.rabbit import RabbitBroker, RabbitQueue

    rates: dict[str, float] = {}
    queue = RabbitQueue(f"peers-{uuid.uuid4().hex[:8]}.fs.booking", durable=True)
    broker = RabbitBroker(amqp.rstrip("/") + "/", logger=None)
    seen = [0]
    subscriber = broker.subscriber(queue)

    @subscriber
    async def consume(msg: Plain) -> Plain:
        seen[0] += 1
        return msg

    await broker.connect()
    await broker.declare_queue(queue)
    payloads = [Plain(**_fields(i)) for i in range(count)]
    await broker.publish(payloads[0], queue=queue, persist=True)
    started = time.perf_counter()
    for payload in payloads[:slow]:
        await broker.publish(payload, queue=queue, persist=True)
    rates["rabbitmq send 1x1"] = _rate(slow, started)
    started = time.perf_counter()
    for start in range(0, count, 1000):  # gather in slices: aio-pika's futures pile up otherwise
        await asyncio.gather(
            *(broker.publish(p, queue=queue, persist=True) for p in payloads[start : start + 1000])
        )
    rates["rabbitmq send batch"] = _rate(count, started)
    total = 1 + slow + count
    await broker.start()
    while seen[0] < 1:
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    while seen[0] < total:
        await asyncio.sleep(0.001)
    rates["rabbitmq consume"] = _rate(total - 1, started)
    await broker.request(payloads[0], queue=queue, timeout=10)
    started = time.perf_counter()
    for payload in payloads[:slow]:
        await broker.request(payload, queue=queue, timeout=10)
    rates["rabbitmq request/response"] = _rate(slow, started)
    await broker.stop()
    return rates


async def theirs_kafka(kafka: str, count: int, slow: int) -> dict[str, float]:
    from faststream.kafka import KafkaBroker

    rates: dict[str, float] = {}
    topic = f"peers-{uuid.uuid4().hex[:8]}.fs.boarded"
    broker = KafkaBroker(kafka.removeprefix("kafka://"), acks="all", logger=None)
    got = [0, 0.0]

    @broker.subscriber(
        topic, group_id=f"bench-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest"
    )
    async def board(msg: Plain) -> None:
        got[0] += 1
        if got[0] == 1:
            got[1] = time.perf_counter()

    await broker.connect()
    payloads = [Plain(**_fields(i)) for i in range(count)]
    await broker.publish(payloads[0], topic=topic)
    started = time.perf_counter()
    for payload in payloads[:slow]:
        await broker.publish(payload, topic=topic)
    rates["kafka publish 1x1"] = _rate(slow, started)
    started = time.perf_counter()
    for start in range(0, count, 80):  # what fits aiokafka's batch buffer (16 KB by default)
        await broker.publish_batch(*payloads[start : start + 80], topic=topic)
    rates["kafka publish batch"] = _rate(count, started)
    total = 1 + slow + count
    await broker.start()
    while got[0] < total:
        await asyncio.sleep(0.001)
    rates["kafka consume"] = _rate(total - 1, float(got[1]))
    await broker.stop()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--amqp",
        default=os.environ.get(
            "INTERCHANGE_BACKENDS__COMMANDS", "amqp://guest:guest@127.0.0.1:5672//"
        ),
    )
    parser.add_argument(
        "--kafka", default=os.environ.get("INTERCHANGE_BACKENDS__EVENTS", "kafka://127.0.0.1:9092")
    )
    parser.add_argument("--count", type=int, default=10_000, help="messages per batch case")
    parser.add_argument("--slow", type=int, default=1_000, help="one-by-one calls per case")
    args = parser.parse_args()
    mine = ours(args.amqp, args.kafka, args.count, args.slow)
    peer = asyncio.run(theirs_rabbit(args.amqp, args.count, args.slow))
    peer |= asyncio.run(theirs_kafka(args.kafka, args.count, args.slow))
    table = Table(title="Interchange and FastStream 0.7.8, same brokers, ~100-byte JSON")
    for column in ("case", "Interchange msg/s", "FastStream msg/s", "x FastStream"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case, rate in mine.items():
        table.add_row(case, f"{rate:,.0f}", f"{peer[case]:,.0f}", f"{rate / peer[case]:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
