"""Conformance: what every event transport promises — an append-only log that every consumer
group reads at its own pace, in order per key, replayable from the start, an offset or a time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from interchange.adapters import ACK, DLQ_ATTEMPTS, DLQ_REASON, DeadLetter, Retry, TransportMessage
from interchange.testing import wait_until
from tests.conformance.inbox import Inbox, accepted


def _events(n: int, keys: int = 1, tag: str = "e") -> list[TransportMessage]:
    return [
        TransportMessage(f"{tag}-{i}", str(i).encode(), {"seq": str(i)}, key=f"k{i % keys}")
        for i in range(n)
    ]


def _publish(events, topic, messages):
    for message in messages:
        events.publish(topic, message)


def test_a_new_group_reads_events_published_before_it_existed(events, names):
    topic = next(names)
    sent = _events(20)
    _publish(events, topic, sent)
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox, start="earliest")
    assert inbox.wait_for(20) == [m.id for m in sent]


def test_every_group_reads_every_event(events, names):
    topic = next(names)
    groups = [Inbox() for _ in range(3)]
    for inbox in groups:
        events.subscribe(topic, next(names), inbox)
    sent = _events(30, keys=3)
    _publish(events, topic, sent)
    for inbox in groups:
        assert sorted(inbox.wait_for(30)) == sorted(m.id for m in sent)


@pytest.mark.requires("consumer_groups")
def test_members_of_one_group_together_read_each_event_once(events, another_events, names):
    topic, group = next(names), next(names)
    shared = Inbox()
    events.subscribe(topic, group, shared)
    another_events().subscribe(topic, group, shared)
    sent = _events(40, keys=4)
    _publish(events, topic, sent)
    shared.wait_for(40)
    assert sorted(shared.ids()) == sorted(m.id for m in sent)


@pytest.mark.requires("ordered_log")
def test_each_key_is_read_in_publish_order(events, names):
    topic = next(names)
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox)
    sent = _events(60, keys=5)
    _publish(events, topic, sent)
    inbox.wait_for(60)
    for key in {m.key for m in sent}:
        published = [m.id for m in sent if m.key == key]
        received = [d.message.id for d in inbox.deliveries if d.message.key == key]
        assert received == published, f"order broken for key {key}"


@pytest.mark.requires("ordered_log")
def test_nothing_after_an_unacknowledged_event_is_delivered_to_its_group(events, names):
    topic = next(names)
    first_done = threading.Event()

    def answer(delivery):
        if delivery.message.id == "e-0" and delivery.attempt < 3:
            return Retry(delay=0.05)
        if delivery.message.id == "e-0":
            first_done.set()
        return ACK

    inbox = Inbox(answer)
    events.subscribe(topic, next(names), inbox)
    _publish(events, topic, _events(3))
    inbox.wait_for(5)
    assert [(d.message.id, d.attempt) for d in inbox.deliveries] == [
        ("e-0", 1),
        ("e-0", 2),
        ("e-0", 3),
        ("e-1", 1),
        ("e-2", 1),
    ]


def test_topics_are_isolated(events, names):
    left, right = next(names), next(names)
    left_inbox, right_inbox = Inbox(), Inbox()
    events.subscribe(left, next(names), left_inbox)
    events.subscribe(right, next(names), right_inbox)
    events.publish(left, TransportMessage("to-left", b"l"))
    events.publish(right, TransportMessage("to-right", b"r"))
    assert left_inbox.wait_for(1) == ["to-left"]
    assert right_inbox.wait_for(1) == ["to-right"]


def test_a_group_continues_where_it_stopped_after_its_consumer_closes(
    events, another_events, names
):
    topic, group = next(names), next(names)
    first = Inbox()
    subscription = events.subscribe(topic, group, first)
    sent = _events(10)
    _publish(events, topic, sent[:5])
    first.wait_for(5)
    subscription.close()
    _publish(events, topic, sent[5:])
    second = Inbox()
    another_events().subscribe(topic, group, second, start="earliest")
    second.wait_for(5)
    assert first.ids() + second.ids() == [m.id for m in sent]


@pytest.mark.requires("replay")
def test_replay_from_the_start_a_position_or_a_time_moves_no_group(events, another_events, names):
    topic, group = next(names), next(names)
    _publish(events, topic, _events(4, tag="old"))
    before = Inbox()
    member = events.subscribe(topic, group, before)
    assert before.wait_for(4) == [f"old-{i}" for i in range(4)]
    member.close()  # the group committed its place: after old-3
    cut = datetime.now(UTC)
    time.sleep(0.01)  # the broker's clock must pass the cut; this is not a wait for a result
    _publish(events, topic, _events(3, tag="new"))
    everything = [d.message.id for d in events.replay(topic)]
    assert everything == [f"old-{i}" for i in range(4)] + [f"new-{i}" for i in range(3)]
    assert [d.message.id for d in events.replay(topic, since=cut)] == ["new-0", "new-1", "new-2"]
    assert [d.message.id for d in events.replay(topic, until=cut)] == [f"old-{i}" for i in range(4)]
    third = [d.position for d in events.replay(topic)][2]
    assert [d.message.id for d in events.replay(topic, since=third)] == everything[2:]
    after = Inbox()
    another_events().subscribe(topic, group, after)  # resumes where the group stopped
    assert after.wait_for(3) == ["new-0", "new-1", "new-2"]


@pytest.mark.requires("replay")
def test_a_new_group_can_start_at_a_position_a_delivery_carried(events, names):
    topic = next(names)
    _publish(events, topic, _events(5, keys=3))
    replayed = list(events.replay(topic))
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox, start=replayed[2].position)
    expected = [d.message.id for d in replayed[2:]]
    assert sorted(inbox.wait_for(len(expected))) == sorted(expected)


@pytest.mark.requires("replay")
def test_an_int_start_is_an_offset_in_every_partition_or_refused(events, names, backend):
    topic = next(names)
    _publish(events, topic, _events(5))  # one key: one partition
    if not backend.capabilities.offsets:
        with pytest.raises(TypeError, match="start from a Position"):
            list(events.replay(topic, since=2))
        return
    offsets = [d.offset for d in events.replay(topic)]
    assert [d.message.id for d in events.replay(topic, since=offsets[2])] == [
        f"e-{i}" for i in range(2, 5)
    ]
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox, start=offsets[3])
    assert inbox.wait_for(2) == ["e-3", "e-4"]


@pytest.mark.requires("replay")
def test_a_group_can_start_from_a_time(events, names):
    topic = next(names)
    _publish(events, topic, _events(3, tag="old"))
    cut = datetime.now(UTC)
    time.sleep(0.01)
    _publish(events, topic, _events(2, tag="new"))
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox, start=cut)
    assert inbox.wait_for(2) == ["new-0", "new-1"]


def test_a_group_starting_at_latest_skips_the_past(events, names):
    topic = next(names)
    _publish(events, topic, _events(3, tag="old"))
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox, start="latest")
    # Publish until the group has joined and reads: "latest" is fixed when it joins.
    wait_until(lambda: bool(inbox.ids()) or _publish(events, topic, [_probe()]) is not None, 30)
    assert all(i.startswith("probe") for i in inbox.ids())


def _probe() -> TransportMessage:
    return TransportMessage(f"probe-{time.monotonic_ns()}", b"p")


@pytest.mark.requires("replay")
def test_seek_makes_a_group_read_again(events, another_events, names):
    topic, group = next(names), next(names)
    first = Inbox()
    subscription = events.subscribe(topic, group, first)
    _publish(events, topic, _events(3))
    first.wait_for(3)
    subscription.close()
    events.seek(topic, group, "earliest")
    again = Inbox()
    another_events().subscribe(topic, group, again)
    assert again.wait_for(3) == ["e-0", "e-1", "e-2"]


def test_a_dead_lettered_event_goes_to_the_dlq_topic_and_the_group_moves_on(events, names):
    topic, group = next(names), next(names)

    def answer(delivery):
        return (
            DeadLetter("SchemaViolation: total_cents missing", "SchemaViolation")
            if (delivery.message.id == "e-1")
            else ACK
        )

    inbox = Inbox(answer)
    events.subscribe(topic, group, inbox)
    dlq = Inbox()
    events.subscribe(f"{topic}.dlq", next(names), dlq)
    _publish(events, topic, _events(3))
    assert inbox.wait_for(3) == ["e-0", "e-1", "e-2"]
    assert dlq.wait_for(1) == ["e-1"]
    headers = dlq.deliveries[0].message.headers
    assert headers[DLQ_REASON] == "SchemaViolation: total_cents missing"
    assert headers[DLQ_ATTEMPTS] == "1"


def test_closing_a_publisher_loses_nothing_it_accepted(events, another_events, names):
    topic = next(names)
    publisher = another_events()
    sent = _events(50)
    _publish(publisher, topic, sent)
    publisher.close()
    inbox = Inbox()
    events.subscribe(topic, next(names), inbox)
    assert inbox.wait_for(50) == [m.id for m in sent]


@pytest.mark.requires("survives_restart", "restart")
def test_a_group_carries_on_after_a_broker_restart_and_loses_nothing(events, backend, url, names):
    topic = next(names)
    in_handler, restarted = threading.Event(), threading.Event()

    def answer(delivery):
        if delivery.message.id == "e-0" and not in_handler.is_set():
            in_handler.set()
            restarted.wait(60)
        return ACK

    inbox = Inbox(answer)
    events.subscribe(topic, next(names), inbox)
    _publish(events, topic, _events(1))
    assert in_handler.wait(30)
    backend.restart(url)
    restarted.set()
    wait_until(lambda: accepted(lambda: events.publish(topic, TransportMessage("e-1", b"1"))), 90)
    wait_until(lambda: "e-1" in inbox.ids(), 90)
    # The event in flight during the restart may come again (at least once), never never.
    assert set(inbox.ids()) == {"e-0", "e-1"}
    assert inbox.ids().count("e-1") == 1


# -- several workers in one member: order per key, a Retry holds only its own key -----------


def test_with_workers_handlers_run_at_once(events, names):
    topic = next(names)
    together = threading.Barrier(4, timeout=15)
    met: list[str] = []

    def meet(delivery):
        together.wait()  # four distinct keys: returns only if four handlers run at once
        met.append(delivery.message.id)
        return ACK

    events.subscribe(topic, next(names), meet, workers=4)
    _publish(events, topic, _events(4, keys=4))
    wait_until(lambda: len(met) == 4, 20, message=lambda: f"met: {met}, {together.broken=}")
    assert sorted(met) == [f"e-{i}" for i in range(4)]


def test_with_workers_a_retried_key_holds_only_itself_and_order_per_key_holds(events, names):
    topic = next(names)
    sent = _events(40, keys=4)  # key k{i % 4}
    release = threading.Event()
    acked: list[str] = []
    lock = threading.Lock()

    def answer(delivery):
        if delivery.message.id == "e-8" and not release.is_set():
            return Retry(delay=0.05)  # k0 waits; k1..k3 must not
        time.sleep(0.002)
        with lock:
            acked.append(delivery.message.id)
        return ACK

    inbox = Inbox(answer)
    events.subscribe(topic, next(names), inbox, workers=3)
    _publish(events, topic, sent)
    others = {m.id for m in sent if m.key != "k0"}
    wait_until(lambda: others <= set(acked), 30, message=lambda: f"acked: {acked}")
    with lock:
        held = [i for i in acked if int(i[2:]) % 4 == 0]
    assert held == ["e-0", "e-4"]  # nothing of k0 after the retried e-8
    release.set()
    wait_until(lambda: len(acked) >= 40, 30, message=lambda: f"acked: {len(acked)}")
    assert sorted(acked) == sorted(m.id for m in sent)  # each exactly once
    for key in range(4):
        mine = [int(i[2:]) for i in acked if int(i[2:]) % 4 == key]
        assert mine == sorted(mine), f"k{key} out of order: {mine}"
    retried = [d.attempt for d in inbox.deliveries if d.message.id == "e-8"]
    assert retried == list(range(1, len(retried) + 1))
    assert len(retried) > 1


@pytest.mark.requires("offsets")
def test_with_workers_a_member_closed_mid_stream_commits_only_what_all_came_before(
    events, another_events, names
):
    topic, group = next(names), next(names)
    sent = _events(40, keys=4)
    held = threading.Event()

    def answer(delivery):
        if delivery.message.id == "e-20":
            held.set()
            return Retry(delay=0.05)  # never done by this member
        return ACK

    first = Inbox(answer)
    member = events.subscribe(topic, group, first, workers=4)
    _publish(events, topic, sent)
    others = {m.id for m in sent if m.key != "k0"}
    wait_until(lambda: held.is_set() and others <= set(first.ids()), 30)
    member.close()
    second = Inbox()
    another_events().subscribe(topic, group, second)
    k0_from_20 = [f"e-{i}" for i in range(20, 40, 4)]
    wait_until(lambda: set(k0_from_20) <= set(second.ids()), 30, message=second.ids)
    # the committed position is e-20's: nothing before it comes again, everything after does
    assert min(int(i[2:]) for i in second.ids()) == 20
    assert [i for i in second.ids() if int(i[2:]) % 4 == 0] == k0_from_20
