"""``start`` is used only by a group that never committed: on the real Kafka, three
partitions, a ``start="latest"`` group stopped cleanly after reading one partition resumes every
partition where it stood, so nothing published while it was stopped is skipped."""

from __future__ import annotations

import threading
import uuid
import zlib

import pytest

from interchange import Bus, Settings
from interchange.contracts import Event
from interchange.testing import wait_until

pytestmark = pytest.mark.kafka


class Audited(Event, name="it.start.audited", version=1):
    n: int


def _key_in(partition: int, n: int) -> str:
    """A key librdkafka's default partitioner (CRC32 of the key, modulo 3) puts in
    ``partition`` of a three-partition topic."""
    return next(
        key for i in range(1_000) if zlib.crc32((key := f"k{n}-{i}").encode()) % 3 == partition
    )


def test_a_latest_group_restarted_gets_everything_published_while_it_was_stopped(kafka_url):
    settings = Settings.without_environment(
        backends={"commands": "memory://", "events": kafka_url},
        channel_prefix=f"start-{uuid.uuid4().hex[:10]}.",
    )
    publisher = Bus(settings)
    got: list[int] = []
    lock = threading.Lock()

    def member() -> Bus:
        bus = Bus(settings)

        @bus.subscribes(Audited, group="audit", start="latest")
        def audit(event: Audited, ctx: object) -> None:
            with lock:
                got.append(event.n)

        return bus

    try:
        publisher.publish(Audited(n=-1), key=_key_in(0, 0))  # history: before any member
        first = member()
        with first:
            # the member reads from "latest" once it is assigned: publish until it sees one
            warm = iter(range(1_000, 2_000))
            wait_until(
                lambda: (
                    bool(publisher.publish(Audited(n=next(warm)), key=_key_in(0, 0)))
                    and any(n >= 1_000 for n in got)
                ),
                20,
                message="the first member never read partition 0",
            )
            for n in range(3):  # one partition only: the others are never read by this run
                publisher.publish(Audited(n=n), key=_key_in(0, 0))
            wait_until(lambda: {0, 1, 2} <= set(got), 20, message=lambda: f"got {got}")
        assert -1 not in got, "an event from before the group's first start was delivered"

        with lock:
            got.clear()
        down = list(range(100, 112))  # while no member runs, into every partition
        for n in down:
            publisher.publish(Audited(n=n), key=_key_in(n % 3, n))
        with member():
            wait_until(
                lambda: set(down) <= set(got),
                20,
                message=lambda: f"missing {sorted(set(down) - set(got))}",
            )
        assert sorted(got) == down, "exactly what was published while stopped, once each"
    finally:
        publisher.close()
