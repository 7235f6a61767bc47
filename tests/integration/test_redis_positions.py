"""Positions on a real Redis topic of three partition streams (``?partitions=3``): a replayed
event's position names every partition, so resuming from it reads exactly the rest of that
replay, even when entries of different streams share an id or a partition got entries after
the replay had read it; and ``interchange tail`` prints every new event exactly once."""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from interchange import Bus, Settings
from interchange.adapters import ACK, TransportMessage, open_events
from interchange.adapters.redis.partitions import partition_streams
from interchange.cli import app
from interchange.contracts import Event
from interchange.testing import wait_until

pytestmark = pytest.mark.redis


class Ticked(Event, name="it.redis.positions.ticked", version=1):
    n: int


def _key_in(partition: int, n: int) -> str:
    """A key our partitioner (CRC-32 of the key, modulo 3) puts in ``partition``."""
    return next(
        key for i in range(1_000) if zlib.crc32((key := f"k{n}-{i}").encode()) % 3 == partition
    )


def _messages(numbers: range, partitions: tuple[int, ...], tag: str) -> list[TransportMessage]:
    return [
        TransportMessage(f"{tag}-{n}", b"x", key=_key_in(partitions[n % len(partitions)], n))
        for n in numbers
    ]


@pytest.fixture
def topic_events(redis_url):
    topic = f"positions-{uuid.uuid4().hex[:8]}"
    events = open_events(f"{redis_url}?partitions=3")
    yield topic, events
    events.client.delete(*partition_streams(topic, 3), f"interchange:partitions:{topic}")
    events.close()


def _redis_millis(events: Any) -> int:
    seconds, micros = events.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_resuming_from_every_replayed_position_reads_exactly_the_rest(topic_events):
    topic, events = topic_events
    # one pipeline per batch: entries of the three streams share milliseconds and sequence
    # numbers (ids are per stream), the case one entry id cannot place in every partition
    events.publish_many(topic, _messages(range(30), (0, 1, 2), "before"))
    edge = _redis_millis(events)
    wait_until(lambda: _redis_millis(events) > edge)  # the window starts after "before"
    since = datetime.fromtimestamp((edge + 1) / 1000, UTC)
    events.publish_many(topic, _messages(range(5), (0,), "start"))  # only partition 0 at first
    events.publish_many(topic, _messages(range(30), (0, 1, 2), "later"))

    replayed = [d.message.id for d in events.replay(topic, since=since)]
    assert sorted(replayed) == sorted(
        [f"start-{n}" for n in range(5)] + [f"later-{n}" for n in range(30)]
    )
    wrong = {}
    for k, delivery in enumerate(events.replay(topic, since=since)):
        resumed = [d.message.id for d in events.replay(topic, since=delivery.position)]
        if resumed != replayed[k:]:
            wrong[k] = resumed[:6]
    assert not wrong, f"resumed from these deliveries, not the rest: {wrong}"


def test_a_replay_resumed_reads_what_a_partition_got_after_it_was_read(topic_events):
    topic, events = topic_events
    # partition 0 needs a second page (500 entries a read): partition 2, read once at the
    # start, gets an entry before partition 0's second page is read, and that page ends with an
    # entry newer still. The replay's last delivery is then partition 0's newest; what
    # partition 2 got is newer than everything the replay gave of it, not than that.
    events.publish_many(topic, _messages(range(600), (0,), "old"))
    events.publish_many(topic, _messages(range(1), (2,), "old2"))
    replay = events.replay(topic)
    first = [next(replay)]
    events.publish_many(topic, _messages(range(1), (2,), "late2"))
    edge = _redis_millis(events)
    wait_until(lambda: _redis_millis(events) > edge)  # late0's id is greater than late2's
    events.publish_many(topic, _messages(range(1), (0,), "late0"))
    rest = list(replay)
    seen = [d.message.id for d in first + rest]
    assert "late0-0" in seen  # the interleaving this test is about
    assert "late2-0" not in seen

    resumed = [d.message.id for d in events.replay(topic, since=rest[-1].position)]

    # that delivery itself, and partition 2's entry the replay never gave (nothing else)
    assert sorted(resumed) == ["late0-0", "late2-0"]


def test_tail_prints_every_event_exactly_once_while_batches_arrive(redis_url, tmp_path):
    prefix = f"tail-{uuid.uuid4().hex[:8]}."
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": f"{redis_url}?partitions=3"}
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'channel_prefix = "{prefix}"\n[backends]\n'
        + "".join(f'{name} = "{url}"\n' for name, url in backends.items())
    )
    bus = Bus(Settings.without_environment(backends=backends, channel_prefix=prefix))
    batches, size = 30, 100
    bus.publish(Ticked(n=-1), key="old")  # before --since: never printed
    edge = _redis_millis(bus.events)
    wait_until(lambda: _redis_millis(bus.events) > edge)
    since = datetime.fromtimestamp((edge + 1) / 1000, UTC).isoformat()
    arguments = ["it.redis.positions.ticked", "--config", str(config), "--module", __name__]
    total = batches * size
    tail = [*arguments, "--since", since, "--interval", "0.05", "--count", str(total)]
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(CliRunner().invoke(app, ["tail", *tail])), daemon=True
    )
    thread.start()
    try:
        n = 0
        while thread.is_alive() and n < 400:
            # 30 batches of 100 keys while tail reads; then single events past the 3000, so a
            # tail that lost some still reaches --count and ends (and the test says what)
            if n < batches:
                keys = [f"k{j}" for j in range(size)]
                bus.publish_many([Ticked(n=n * size + j) for j in range(size)], keys=keys)
            else:
                bus.publish(Ticked(n=total + n), key="filler")
            n += 1
            thread.join(0.05)
        thread.join(30)
    finally:
        bus.close()
        bus.events.client.delete(*partition_streams(f"{prefix}it.redis.positions.ticked", 3))
    assert result, "tail did not finish"
    assert result[0].exit_code == 0, result[0].output
    printed = [
        json.loads(line)["data"]["n"] for line in result[0].stdout.splitlines() if line[:1] == "{"
    ]
    missing = sorted(set(range(total)) - set(printed))
    twice = sorted(n for n, times in Counter(printed).items() if times > 1)
    assert (missing, twice) == ([], []), f"{len(missing)} missing, {len(twice)} printed twice"
    assert -1 not in printed


def test_a_group_moved_to_a_replayed_position_reads_the_rest_in_every_partition(topic_events):
    topic, events = topic_events
    events.publish_many(topic, _messages(range(30), (0, 1, 2), "e"))  # ids shared by streams
    replayed = list(events.replay(topic))
    rest = sorted(d.message.id for d in replayed[10:])
    group = f"g-{uuid.uuid4().hex[:8]}"
    events.seek(topic, group, replayed[10].position)
    received: list[str] = []

    def handler(delivery):
        received.append(delivery.message.id)
        return ACK

    subscription = events.subscribe(topic, group, handler)
    try:
        wait_until(lambda: len(received) >= len(rest), message=lambda: f"got {received}")
        events.publish_many(topic, _messages(range(1), (0,), "after"))  # read after the rest
        wait_until(lambda: "after-0" in received, message=lambda: f"got {received}")
    finally:
        subscription.close()
    assert sorted(received) == sorted([*rest, "after-0"])
