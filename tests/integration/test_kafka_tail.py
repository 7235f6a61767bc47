"""``interchange tail`` on the real Kafka, three partitions, while events keep arriving: each
event is printed exactly once, even when a partition's new records carry timestamps earlier
than the record the previous look ended on."""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from interchange import Bus, Settings
from interchange.adapters.kafka.wire import servers_of
from interchange.adapters.message import ID_HEADER
from interchange.cli import app
from interchange.cli_operator import _follow_log
from interchange.contracts import Event

pytestmark = pytest.mark.kafka


class Followed(Event, name="it.tail.followed", version=1):
    n: int


def _key_in(partition: int, n: int) -> str:
    """A key librdkafka's default partitioner (CRC32 of the key, modulo 3) puts in
    ``partition`` of a three-partition topic."""
    return next(
        key for i in range(1_000) if zlib.crc32((key := f"k{n}-{i}").encode()) % 3 == partition
    )


def _bus(kafka_url: str, prefix: str) -> Bus:
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": kafka_url}
    return Bus(Settings.without_environment(backends=backends, channel_prefix=prefix))


def test_the_record_a_look_ended_on_is_not_printed_again_when_it_is_not_read_first(kafka_url):
    """The adversarial interleaving, step by step: the next look reads an older-stamped record
    of another partition before the one the previous look ended on."""
    bus = _bus(kafka_url, f"tail-{uuid.uuid4().hex[:8]}.")
    producer = Producer({"bootstrap.servers": servers_of(kafka_url)})
    topic = bus.topic_of(Followed)
    bus.publish(Followed(n=-1), key=_key_in(0, 0))  # the topic exists, with history
    now = datetime.now(UTC)
    stamp = int(now.timestamp() * 1000)

    def record(name: str, partition: int, at: int) -> None:
        producer.produce(topic, b"{}", partition=partition, timestamp=at, headers={ID_HEADER: name})
        assert producer.flush(10) == 0

    try:
        record("last-of-look-1", 0, stamp + 100)
        lines = _follow_log(bus, Followed, 0.05, now)
        assert next(lines)["id"] == "last-of-look-1"
        # stored after the first look began, stamped before the record it ended on
        record("older-in-partition-1", 1, stamp + 50)
        record("newer", 2, stamp + 200)
        printed = [next(lines)["id"], next(lines)["id"]]
        assert printed == ["older-in-partition-1", "newer"]
    finally:
        producer.flush(10)
        bus.close()


def test_tail_during_30_batches_of_100_keyed_events_prints_each_exactly_once(kafka_url, tmp_path):
    prefix = f"tail-{uuid.uuid4().hex[:8]}."
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'channel_prefix = "{prefix}"\n[backends]\n'
        f'commands = "memory://{uuid.uuid4().hex}"\nevents = "{kafka_url}"\n'
    )
    bus = _bus(kafka_url, prefix)
    bus.publish(Followed(n=-1), key="old")  # history the tail must not print
    since = (datetime.now(UTC) + timedelta(milliseconds=5)).isoformat()
    time.sleep(0.01)  # a millisecond clock: the history is stamped before ``since``
    arguments = ["tail", "it.tail.followed", "--config", str(config), "--module", __name__]
    result: list[Any] = []
    tail = threading.Thread(
        target=lambda: result.append(
            CliRunner().invoke(
                app, [*arguments, "--since", since, "--count", "3000", "--interval", "0.05"]
            )
        ),
        daemon=True,
    )
    tail.start()
    try:
        for batch in range(30):
            bus.publish_many(
                [Followed(n=batch * 100 + j) for j in range(100)],
                keys=[f"k{j}" for j in range(100)],
            )
            tail.join(0.02)
        tail.join(30)
    finally:
        bus.close()
    assert result, "tail did not print 3000 lines in time"
    assert result[0].exit_code == 0, result[0].output
    lines = result[0].stdout.splitlines()
    printed = [json.loads(line)["data"]["n"] for line in lines if line.startswith("{")]
    assert len(printed) == 3000
    assert sorted(printed) == list(range(3000)), "each event exactly once, no history"
