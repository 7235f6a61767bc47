"""Positions on the real Kafka, three partitions: resuming from a replayed event's position
reads exactly the rest of that replay (a partition with nothing in the window is not read from
its oldest record), and ``interchange tail`` prints only what arrives after it started."""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from interchange import Bus, Settings
from interchange.cli import app
from interchange.contracts import Event

pytestmark = pytest.mark.kafka


class Scanned(Event, name="it.positions.scanned", version=1):
    n: int


def _key_in(partition: int, n: int) -> str:
    """A key librdkafka's default partitioner (CRC32 of the key, modulo 3) puts in
    ``partition`` of a three-partition topic."""
    return next(
        key for i in range(1_000) if zlib.crc32((key := f"k{n}-{i}").encode()) % 3 == partition
    )


def _publish(bus: Bus, numbers: range, partitions: tuple[int, ...]) -> list[str]:
    """Publish Scanned(n) for each n, keyed into ``partitions`` in turn; their ids."""
    return [
        bus.publish(Scanned(n=n), key=_key_in(partitions[n % len(partitions)], n)) for n in numbers
    ]


@pytest.mark.parametrize("window", ["time", "offset"])
def test_resuming_from_a_replayed_events_position_reads_exactly_the_rest(kafka_bus, window):
    bus = kafka_bus()
    topic = bus.topic_of(Scanned)
    before = _publish(bus, range(6), (0, 1, 2))  # two in each partition: offsets 0 and 1
    time.sleep(0.02)  # a millisecond clock: the window's edge falls between the two batches
    middle = datetime.now(UTC)
    time.sleep(0.02)
    inside = _publish(bus, range(6, 12), (0, 1))  # partition 2 gets nothing in the window
    since: Any = middle if window == "time" else 2  # offset 2 of every partition

    replayed = list(bus.events.replay(topic, since=since))
    assert sorted(d.message.id for d in replayed) == sorted(inside)
    resumed = list(bus.events.replay(topic, since=replayed[2].position))

    assert [d.message.id for d in resumed] == [d.message.id for d in replayed[2:]]
    assert not set(before) & {d.message.id for d in resumed}


def _tail(arguments: list[str], keep_publishing) -> list[dict[str, Any]]:
    """Run ``interchange tail`` until it printed what it was asked for, publishing meanwhile."""
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(CliRunner().invoke(app, ["tail", *arguments])), daemon=True
    )
    thread.start()
    n = 0
    while thread.is_alive() and n < 600:
        keep_publishing(n)
        n += 1
        thread.join(0.05)
    thread.join(30)
    assert result, "tail did not finish"
    assert result[0].exit_code == 0, result[0].output
    return [json.loads(line) for line in result[0].stdout.splitlines() if line.startswith("{")]


def test_tail_prints_only_what_arrives_after_it_started_in_every_partition(kafka_url, tmp_path):
    prefix = f"tail-{uuid.uuid4().hex[:8]}."
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": kafka_url}
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'channel_prefix = "{prefix}"\n[backends]\n'
        + "".join(f'{name} = "{url}"\n' for name, url in backends.items())
    )
    bus = Bus(Settings.without_environment(backends=backends, channel_prefix=prefix))
    old = 6
    _publish(bus, range(old), (0, 1, 2))
    arguments = ["it.positions.scanned", "--config", str(config), "--module", __name__]
    try:
        lines = _tail(
            [*arguments, "--count", "5", "--interval", "0.1"],
            lambda n: _publish(bus, range(old + n, old + n + 1), (0, 1, 2)),
        )
        history = _tail([*arguments, "--count", str(old), "--since", "earliest"], lambda n: None)
    finally:
        bus.close()

    printed = [line["data"]["n"] for line in lines]
    assert min(printed) >= old, f"tail printed history: {printed}"
    assert printed == list(range(printed[0], printed[0] + 5))  # the next ones, once, in order
    # across partitions a replay's order is the records' millisecond timestamps: the history,
    # published at once, may share them
    assert sorted(line["data"]["n"] for line in history) == list(range(old))
