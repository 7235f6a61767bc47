"""channel_prefix isolates Kafka consumer groups too: two environments sharing a cluster, with
the same group name, never share a group (a group id is one namespace for the whole cluster)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient

from interchange import Reject
from interchange.contracts import Event
from interchange.testing import Recorder, wait_until

pytestmark = pytest.mark.kafka


class Invoiced(Event, name="it.group_prefix.invoiced", version=1):
    env: str
    n: int


def _group_ids(admin: AdminClient) -> set[str]:
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    return {group.group_id for group in listed.valid}


def test_two_prefixes_with_the_same_group_name_get_two_groups_each_its_own_events(
    kafka_bus, kafka_url
):
    group = f"billing-{uuid.uuid4().hex[:8]}"
    prefixes = [f"staging-{uuid.uuid4().hex[:6]}.", f"prod-{uuid.uuid4().hex[:6]}."]
    buses = [kafka_bus(channel_prefix=prefix) for prefix in prefixes]
    received = [Recorder(), Recorder()]
    for bus, recorder in zip(buses, received, strict=True):
        bus.subscribes(Invoiced, group=group)(recorder)
    for bus in buses:
        bus.start()
    for n in range(3):
        for bus, prefix in zip(buses, prefixes, strict=True):
            bus.publish(Invoiced(env=prefix, n=n))

    for recorder in received:
        recorder.wait_for(3, timeout=60)
    admin = AdminClient({"bootstrap.servers": kafka_url.removeprefix("kafka://").split("?")[0]})
    wait_until(lambda: {p + group for p in prefixes} <= _group_ids(admin), timeout=15)

    for recorder, prefix in zip(received, prefixes, strict=True):  # unkeyed: any order
        assert sorted((e.env, e.n) for e in recorder.contracts) == [(prefix, n) for n in range(3)]
    assert group not in _group_ids(admin)


def test_a_dead_letter_names_the_group_as_the_service_does(kafka_bus):
    bus = kafka_bus()  # a prefix of its own, so the group's id on Kafka carries it
    group = f"audit-{uuid.uuid4().hex[:8]}"
    read = []

    @bus.subscribes(Invoiced, group=group)
    def refuse(event: Invoiced) -> None:
        raise Reject(f"no invoice {event.n}")

    bus.handles_dead_letters(Invoiced)(read.append)
    with bus:
        bus.publish(Invoiced(env="x", n=7))
        wait_until(lambda: len(read) == 1, timeout=60)

    assert (read[0].group, read[0].reason) == (group, "no invoice 7")
