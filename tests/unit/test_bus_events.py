"""Events through the Bus: the log, consumer groups, start positions, replay, seek, dead letters."""

import time
from datetime import UTC, datetime

import pytest

from interchange.contracts import DecodeError, Event
from interchange.testing import Recorder, wait_until


class ParcelScanned(Event, name="unit.events.parcel_scanned", version=1):
    parcel_id: str
    seq: int


class ParcelScannedV2(Event, name="unit.events.parcel_scanned", version=2):
    parcel_id: str
    seq: int
    depot: str


def _scans(n, parcels=("p1", "p2", "p3")):
    return [ParcelScanned(parcel_id=parcels[i % len(parcels)], seq=i) for i in range(n)]


def test_every_group_receives_every_event_in_publish_order(make_bus):
    bus = make_bus()
    billing, shipping = Recorder(), Recorder()
    bus.subscribes(ParcelScanned, group="billing")(billing)
    bus.subscribes(ParcelScanned, group="shipping", concurrency=2)(shipping)
    with bus:
        for evt in _scans(30):
            bus.publish(evt)
        assert [e.seq for e in billing.wait_for(30)] == list(range(30))
        assert [e.seq for e in shipping.wait_for(30)] == list(range(30))
    assert len(billing) == len(shipping) == 30


def test_a_group_that_joins_late_with_earliest_reads_the_whole_log(make_bus):
    bus = make_bus()
    for evt in _scans(5):
        bus.publish(evt)
    late = Recorder()
    bus.subscribes(ParcelScanned, group="analytics", start="earliest")(late)
    with bus:
        assert [e.seq for e in late.wait_for(5)] == [0, 1, 2, 3, 4]


def test_a_group_starting_at_latest_sees_only_what_comes_after(make_bus):
    bus = make_bus()
    for evt in _scans(3):
        bus.publish(evt)
    fresh = Recorder()
    bus.subscribes(ParcelScanned, group="live", start="latest")(fresh)
    with bus:
        bus.publish(ParcelScanned(parcel_id="p9", seq=99))
        assert [e.seq for e in fresh.wait_for(1)] == [99]


def test_a_group_resumes_after_its_committed_offset_not_its_start(make_bus):
    first_run = make_bus()
    seen = Recorder()
    first_run.subscribes(ParcelScanned, group="billing")(seen)
    with first_run:
        for evt in _scans(3):
            first_run.publish(evt)
        seen.wait_for(3)
    first_run.publish(ParcelScanned(parcel_id="p1", seq=3))
    second_run = make_bus()
    resumed = Recorder()
    second_run.subscribes(ParcelScanned, group="billing", start="earliest")(resumed)
    with second_run:
        assert [e.seq for e in resumed.wait_for(1)] == [3]


def test_start_at_an_offset_or_a_time(make_bus):
    bus = make_bus()
    for evt in _scans(4):
        bus.publish(evt)
    midpoint = datetime.now(UTC)
    time.sleep(0.002)  # the clock must move past the midpoint stamp; not a wait for a result
    for evt in _scans(3, parcels=("late",)):
        bus.publish(evt)
    from_offset, from_time = Recorder(), Recorder()
    bus.subscribes(ParcelScanned, group="from-offset", start=2)(from_offset)
    bus.subscribes(ParcelScanned, group="from-time", start=midpoint)(from_time)
    with bus:
        assert [e.seq for e in from_offset.wait_for(5)] == [2, 3, 0, 1, 2]
        assert [e.parcel_id for e in from_time.wait_for(3)] == ["late"] * 3


def test_replay_reads_a_window_of_the_log_without_moving_any_group(make_bus):
    bus = make_bus()
    for evt in _scans(3):
        bus.publish(evt)
    cut = datetime.now(UTC)
    time.sleep(0.002)
    bus.publish(ParcelScanned(parcel_id="after", seq=100))
    assert [e.seq for e in bus.replay(ParcelScanned)] == [0, 1, 2, 100]
    assert [e.seq for e in bus.replay(ParcelScanned, since="beginning", until=cut)] == [0, 1, 2]
    assert [e.seq for e in bus.replay(ParcelScanned, since=cut)] == [100]
    assert [e.seq for e in bus.replay(ParcelScanned, since=2)] == [2, 100]
    group = Recorder()
    bus.subscribes(ParcelScanned, group="untouched")(group)
    with bus:
        assert len(group.wait_for(4)) == 4, "replay must not have consumed for any group"


def test_replay_raises_on_a_record_of_another_version_unless_told_to_skip(make_bus):
    bus = make_bus()
    bus.publish(ParcelScanned(parcel_id="a", seq=1))
    bus.publish(ParcelScannedV2(parcel_id="b", seq=2, depot="north"))
    with pytest.raises(DecodeError, match=r"offset 1: no converter from v2 to v1 of unit.events"):
        list(bus.replay(ParcelScanned))
    assert [e.seq for e in bus.replay(ParcelScanned, on_error="skip")] == [1]


def test_seek_moves_a_group_back_to_reprocess(make_bus):
    bus = make_bus()
    seen = Recorder()
    bus.subscribes(ParcelScanned, group="billing")(seen)
    with bus:
        for evt in _scans(3):
            bus.publish(evt)
        seen.wait_for(3)
    bus.seek(ParcelScanned, "billing", to="earliest")
    with bus:
        assert [e.seq for e in seen.wait_for(6)] == [0, 1, 2, 0, 1, 2]


def test_a_failing_event_handler_blocks_its_group_in_order_then_dead_letters(make_bus):
    bus = make_bus(retry={"max_attempts": 3, "initial_delay": 0.001})
    order, dead = [], []

    @bus.subscribes(ParcelScanned, group="billing")
    def bill(evt, ctx):
        order.append((evt.seq, ctx.attempt))
        if evt.seq == 1:
            raise RuntimeError("tariff missing")

    bus.handles_dead_letters(ParcelScanned, group="billing")(dead.append)
    with bus:
        for evt in _scans(3):
            bus.publish(evt)
        wait_until(lambda: len(order) == 5 and len(dead) == 1)
    assert order == [(0, 1), (1, 1), (1, 2), (1, 3), (2, 1)]
    assert dead[0].reason == "RuntimeError: tariff missing"
    assert dead[0].attempts == 3
    assert [e.seq for e in bus.replay(ParcelScanned)] == [0, 1, 2]


def test_the_partition_key_comes_from_the_route(make_bus):
    bus = make_bus(routes={"unit.events.parcel_scanned": {"partition_key": "parcel_id"}})
    seen = Recorder()
    bus.subscribes(ParcelScanned, group="g")(seen)
    with bus:
        bus.publish(ParcelScanned(parcel_id="p-42", seq=1))
        seen.wait_for(1)
    assert seen.contexts[0].envelope.partition_key == "p-42"
    delivered = next(bus.events.replay(bus.topic_of(ParcelScanned)))
    assert delivered.message.key == "p-42"


def test_routes_rename_topics_and_a_channel_prefix_isolates_services(make_bus):
    bus = make_bus(
        routes={"unit.events.parcel_scanned": {"topic": "scans"}}, channel_prefix="tenant-a."
    )
    bus.publish(ParcelScanned(parcel_id="p", seq=1))
    assert bus.topic_of(ParcelScanned) == "tenant-a.scans"
    other = make_bus(routes={"unit.events.parcel_scanned": {"topic": "scans"}})
    assert list(other.replay(ParcelScanned)) == []
