"""Event throughput on Kafka: raw confluent-kafka vs Interchange, one run, same broker.

    raw producer              produce() everything, then flush(): acks=all, idempotent
    raw producer + headers    the same with the CloudEvents headers Interchange writes
    raw consumer              a fresh group reads the topic from the start
    Interchange publish       one acknowledged event per call
    Interchange publish_many  every delivery report awaited once per batch
    Interchange batch loop    bus.batch(): one publish call per event, stored at the block's end
    Interchange subscribe     a consumer group through the Bus: decode, dedupe, handler, commit
    broker ceiling            Kafka's own ProducerPerformance (kafka-producer-perf-test)

for 100-byte and 1 KB events. Compare ratios, not absolute rates: this machine is noisy.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

from interchange import Bus, Settings
from interchange.contracts import Event


class Measured(Event, name="bench.kafka.measured", version=1):
    sensor: str
    seq: int
    note: str


def _event(i: int, size: int) -> Measured:
    padding = max(0, size - 45)  # the JSON around the note is about 45 bytes
    return Measured(sensor=f"s{i % 10}", seq=i, note="x" * padding)


def _rate(count: int, started: float) -> float:
    return count / (time.perf_counter() - started)


def _headers() -> list[tuple[str, bytes]]:
    """What Interchange writes on a record: the CloudEvents attributes (binary mode)."""
    from interchange.contracts import Codec

    [(headers, _)] = Codec("ce_").encode_many(
        [_event(0, 100)], [str(uuid.uuid4())], ["s0"], source="bench"
    )
    return [(k, v.encode()) for k, v in headers.items()]


def raw_producer(servers: str, topic: str, count: int, size: int, headers: bool = False) -> float:
    producer = Producer(
        {"bootstrap.servers": servers, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    body = _event(0, size).model_dump_json().encode()
    extra = {"headers": _headers()} if headers else {}
    producer.produce(topic, value=body, key="s0", **extra)  # topic created and metadata known
    producer.flush(30)
    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=body, key=f"s{i % 10}", **extra)
                break
            except BufferError:
                producer.poll(0.01)
    left = producer.flush(60)
    assert left == 0, f"{left} records unacknowledged"
    return _rate(count, started)


def raw_consumer(servers: str, topic: str, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started = None
    while seen < count:
        record = consumer.poll(1.0)
        if record is None or record.error():
            continue
        started = started or time.perf_counter()
        seen += 1
    rate = _rate(count - 1, started)  # timed from the first record: group join excluded
    consumer.close()
    return rate


def interchange_publish(bus: Bus, count: int, size: int, many: bool, loop: bool = False) -> float:
    events = [_event(i, size) for i in range(count)]
    started = time.perf_counter()
    if loop:
        with bus.batch(max_pending=count) as held:
            for event in events:
                held.publish(event)
    elif many:
        bus.publish_many(events)
    else:
        for event in events:
            bus.publish(event)
    return _rate(count, started)


def interchange_subscribe(bus: Bus, count: int) -> float:
    seen = [0, 0.0]
    done = threading.Event()
    lock = threading.Lock()

    @bus.subscribes(Measured, group=f"bench-{uuid.uuid4().hex[:8]}")
    def handle(evt: Measured, ctx: object) -> None:
        with lock:
            seen[0] += 1
            if seen[0] == 1:
                seen[1] = time.perf_counter()
            if seen[0] == count:
                done.set()

    with bus:
        if not done.wait(300):
            raise RuntimeError(f"subscriber saw {seen[0]} of {count}")
    return _rate(count - 1, seen[1])


def broker_ceiling(servers: str, topic: str, count: int, size: int) -> float | None:
    jars = sorted(glob.glob(os.path.expanduser("~/.cache/interchange/kafka-*/lib")))
    if not jars:
        return None
    out = subprocess.run(
        [
            "java",
            "-cp",
            f"{jars[-1]}/*",
            "-Dlog4j2.configurationFile="
            + str(Path(__file__).resolve().parents[1] / "compose/native/kafka/log4j2.properties"),
            "-Dkafka.logs.dir=/tmp",
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(count),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={servers}",
            "acks=all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    found = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out)
    return float(found[-1][1]) if found else None


def _bus(url: str, prefix: str) -> Bus:
    return Bus(
        Settings.without_environment(
            backends={"commands": "memory://bench", "events": url}, channel_prefix=prefix
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("INTERCHANGE_BACKENDS__EVENTS", "kafka://127.0.0.1:9092")
    )
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--single-count", type=int, default=1_000, help="one-by-one publishes")
    args = parser.parse_args()
    servers = args.url.removeprefix("kafka://").split("?")[0]
    run = uuid.uuid4().hex[:8]
    table = Table(title=f"Kafka events, one broker at {servers}")
    for column in ("size", "case", "events/s", "x raw (+ headers)"):
        table.add_column(column, justify="left" if column in ("size", "case") else "right")
    for size in (100, 1024):
        raw_topic = f"bench-{run}-raw-{size}"
        produced = raw_producer(servers, raw_topic, args.count, size)
        with_headers = raw_producer(servers, raw_topic + "-h", args.count, size, headers=True)
        consumed = raw_consumer(servers, raw_topic, args.count)
        prefix = f"bench-{run}-{size}."

        publisher = _bus(args.url, prefix)
        publisher.publish(_event(0, size))  # topic created and connected outside the timing
        single = interchange_publish(publisher, args.single_count, size, many=False)
        many = interchange_publish(publisher, args.count, size, many=True)
        looped = interchange_publish(publisher, args.count, size, many=False, loop=True)
        publisher.close()
        subscribed = interchange_subscribe(
            _bus(args.url, prefix), 2 * args.count + args.single_count + 1
        )
        ceiling = broker_ceiling(servers, f"bench-{run}-perf-{size}", args.count, size)
        rows = [
            ("raw producer (acks=all)", produced, produced),
            ("raw producer + CloudEvents headers", with_headers, with_headers),
            ("Interchange publish (one by one)", single, with_headers),
            ("Interchange publish_many", many, with_headers),
            ("Interchange batch loop (x publish_many)", looped, many),
            ("raw consumer", consumed, consumed),
            ("Interchange subscribe", subscribed, consumed),
        ]
        if ceiling:
            rows.append(("broker ceiling (ProducerPerformance)", ceiling, produced))
        for case, rate, raw in rows:
            table.add_row(f"{size} B", case, f"{rate:,.0f}", f"{rate / raw:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
