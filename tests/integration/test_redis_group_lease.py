"""On Redis one member of an event group reads at a time, under a lease (adapters/redis/lease.py):
how a member takes over, and how it stops once the lease is not its own."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from interchange.adapters import ACK, Delivery, EventTransport, TransportMessage, open_events
from interchange.adapters.redis.lease import lease_key
from interchange.testing import wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def names() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    return f"lease-{run}", f"group-{run}"


@pytest.fixture
def opened(redis_url: str) -> Iterator[list[EventTransport]]:
    transports: list[EventTransport] = []
    yield transports
    for transport in transports:
        transport.close()


def _open(redis_url: str, opened: list[EventTransport], options: str) -> EventTransport:
    transport = open_events(f"{redis_url}?{options}")
    opened.append(transport)
    return transport


def _publish(events: EventTransport, topic: str, n: int) -> list[str]:
    ids = [f"m{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    events.publish_many(topic, [TransportMessage(i, b"x", key="one-key") for i in ids])
    return ids


@pytest.mark.parametrize("workers", [1, 4])
def test_a_new_member_first_finishes_what_the_previous_reader_left_pending_in_order(
    redis_url, opened, names, workers
):
    topic, group = names
    events = _open(redis_url, opened, "lease_ttl=1")
    ids = _publish(events, topic, 10)
    client = events.client  # type: ignore[attr-defined]
    client.xgroup_create(topic, group, id="0")
    client.xreadgroup(group, "dead-member", {topic: ">"}, count=5)  # took five, then died
    got: list[Delivery] = []
    events.subscribe(topic, group, lambda d: got.append(d) or ACK, workers=workers)
    wait_until(lambda: len(got) == 10, 20, message=lambda: f"got {len(got)}")
    assert [d.message.id for d in got] == ids, "the dead member's five first, then the rest"
    assert [d.attempt for d in got[:6]] == [2, 2, 2, 2, 2, 1]


def test_a_member_that_lost_the_lease_handles_nothing_more_until_it_holds_it_again(
    redis_url, opened, names
):
    topic, group = names
    events = _open(redis_url, opened, "lease_ttl=1")
    client = events.client  # type: ignore[attr-defined]
    ids = _publish(events, topic, 5)
    key = lease_key(topic, group)
    release = threading.Event()
    got: list[tuple[str, bytes | None]] = []  # (id, who held the lease while it was handled)

    def handler(delivery: Delivery):
        got.append((delivery.message.id, client.get(key)))
        if len(got) == 1:
            release.wait(20)
        return ACK

    member = events.subscribe(topic, group, handler)
    wait_until(lambda: len(got) == 1, 20)
    client.set(key, b"another-member")  # the lease lapsed and another member took it
    wait_until(lambda: not member.lease.held(), 10)  # type: ignore[attr-defined]
    release.set()
    wait_until(lambda: client.xpending(topic, group)["pending"] == 4, 10)  # the first acked
    client.delete(key)  # the other member gives it back
    wait_until(lambda: len(got) == 5, 20, message=lambda: f"got {got}")
    assert [i for i, _ in got] == ids
    assert b"another-member" not in [holder for _, holder in got[1:]], got


@pytest.mark.parametrize("workers", [1, 4])
def test_a_member_stuck_in_a_handler_gives_up_the_group_after_claim_idle(
    redis_url, opened, names, workers
):
    topic, group = names
    stuck = _open(redis_url, opened, "lease_ttl=1&claim_idle=1")
    ids = _publish(stuck, topic, 5)
    hung, release = [], threading.Event()

    def hang(delivery: Delivery):
        hung.append(delivery)
        release.wait(30)
        return ACK

    stuck.subscribe(topic, group, hang, workers=workers)
    wait_until(lambda: len(hung) == 1, 20)  # it read all five, and hangs on the first
    other = _open(redis_url, opened, "lease_ttl=1&claim_idle=1")
    got: list[Delivery] = []
    other.subscribe(topic, group, lambda d: got.append(d) or ACK, workers=workers)
    ids += _publish(stuck, topic, 5)  # new entries: not before the five the stuck one holds
    try:
        wait_until(lambda: len(got) == 10, 20, message=lambda: f"got {len(got)}")
    finally:
        release.set()
    assert [d.message.id for d in got] == ids, "the hung entry again first, then the rest"
    assert got[0].attempt == 2


def test_a_member_that_closes_hands_the_group_over_at_once(redis_url, opened, names):
    topic, group = names
    first = _open(redis_url, opened, "lease_ttl=30")  # a handover by expiry would take 30 s
    second = _open(redis_url, opened, "lease_ttl=30")
    before, after = [], []
    first.subscribe(topic, group, lambda d: before.append(d) or ACK)
    ids = _publish(first, topic, 3)
    wait_until(lambda: len(before) == 3, 20)
    second.subscribe(topic, group, lambda d: after.append(d) or ACK)  # a standby
    opened.remove(first)
    first.close()
    ids += _publish(second, topic, 3)
    wait_until(lambda: len(after) == 3, 20, message=lambda: f"got {len(after)}")
    assert [d.message.id for d in before + after] == ids


def test_with_partitions_the_members_of_a_group_read_at_once_each_key_in_order(
    redis_url, opened, names
):
    topic, group = names
    options = "partitions=4&lease_ttl=1"
    first, second = _open(redis_url, opened, options), _open(redis_url, opened, options)
    client = first.client  # type: ignore[attr-defined]
    streams = [topic, *(f"{topic}:{i}" for i in range(1, 4))]
    lock = threading.Lock()
    handled: list[tuple[str, str, int]] = []  # (member, key, n)

    def member(name: str):
        def handle(delivery: Delivery):
            key, n = delivery.message.body.decode().split(":")
            with lock:
                handled.append((name, key, int(n)))
            return ACK

        return handle

    first.subscribe(topic, group, member("first"))
    second.subscribe(topic, group, member("second"))

    def holders() -> set[bytes | None]:
        return {client.get(lease_key(stream, group)) for stream in streams}

    # the first to start takes all four; the second's arrival makes it give two back
    wait_until(lambda: len(holders()) == 2 and None not in holders(), 20, message=holders)
    sent = [(f"k{n % 8}", n) for n in range(200)]
    first.publish_many(
        topic, [TransportMessage(f"e{n}", f"{k}:{n}".encode(), key=k) for k, n in sent]
    )
    wait_until(lambda: len(handled) >= 200, 20, message=lambda: f"got {len(handled)}")
    assert sorted(n for _, _, n in handled) == list(range(200))
    assert {name for name, _, _ in handled} == {"first", "second"}
    for key in {k for k, _ in sent}:
        numbers = [n for _, k, n in handled if k == key]
        assert numbers == sorted(numbers), key
        assert len({name for name, k, _ in handled if k == key}) == 1, "one reader per key"
    replayed = [d.message.id for d in first.replay(topic)]
    assert sorted(replayed) == sorted(f"e{n}" for n in range(200)), "replay reads every partition"


def test_a_member_joining_mid_stream_never_overlaps_the_one_that_gives_it_a_partition(
    redis_url, opened, names
):
    topic, group = names
    options = "partitions=2&lease_ttl=1"
    first = _open(redis_url, opened, options)
    lock = threading.Lock()
    runs: list[tuple[str, str, int, float, float]] = []  # member, key, n, start, end
    slow_until = [0.0]  # while the second joins, the first's handlers take longer than the
    # second's looks for a free lease: a lease handed over mid-entry would show as an overlap

    def member(name: str):
        def handle(delivery: Delivery):
            key, n = delivery.message.body.decode().split(":")
            started = time.monotonic()
            slow = name == "first" and started < slow_until[0]
            time.sleep(0.4 if slow else 0.01)  # the handler's own work
            with lock:
                runs.append((name, key, int(n), started, time.monotonic()))
            return ACK

        return handle

    first.subscribe(topic, group, member("first"))
    first.publish_many(
        topic,
        [TransportMessage(f"e{n}", f"k{n % 8}:{n}".encode(), key=f"k{n % 8}") for n in range(80)],
    )
    wait_until(lambda: len(runs) >= 10, 20)
    second = _open(redis_url, opened, options)
    slow_until[0] = time.monotonic() + 2
    second.subscribe(topic, group, member("second"))  # takes one of the two partitions
    wait_until(lambda: len(runs) >= 80, 30, message=lambda: f"got {len(runs)}")
    assert sorted(n for _, _, n, _, _ in runs) == list(range(80))
    assert {name for name, *_ in runs} == {"first", "second"}
    for key in {key for _, key, *_ in runs}:
        of_key = sorted((r for r in runs if r[1] == key), key=lambda r: r[3])
        assert [r[2] for r in of_key] == sorted(r[2] for r in of_key), f"{key} out of order"
        for before, after in itertools.pairwise(of_key):
            assert before[4] <= after[3], f"{key}: {before} still ran when {after} started"
