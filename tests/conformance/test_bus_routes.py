"""Conformance at the Bus, with default routes: a command's queue and its exchange are both
named after the contract, so only a backend that keeps them apart passes. The transport-level
tests name them differently and never saw one that mixed them up (Redis did). Events: every
group reads every event of a default-named topic, each key in publish order."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from interchange import Bus, Command, Event, Settings
from interchange.adapters import CommandTransport, EventTransport, PublishRejected
from interchange.testing import wait_until


class Ping(Command, name="conformance.bus.ping", version=1):
    n: int


class Weighed(Event, name="conformance.bus.weighed", version=1):
    parcel: str
    n: int


class Seen:
    """What one handler was given, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers: list[int] = []

    def __call__(self, message: Ping | Weighed) -> None:
        with self.lock:
            self.numbers.append(message.n)

    def got(self) -> list[int]:
        with self.lock:
            return list(self.numbers)

    def wait_for(self, n: int) -> list[int]:
        wait_until(lambda: n in self.got(), 20, message=lambda: f"{n} not in {self.got()}")
        return self.got()


def _buses(**transports: Any) -> Iterator[Callable[..., Bus]]:
    """Buses on the backend's transport, default routes, a channel prefix of their own."""
    made: list[Bus] = []

    def make(**settings: Any) -> Bus:
        prefix = f"conf-bus-{uuid.uuid4().hex[:10]}."
        bus = Bus(Settings.without_environment(channel_prefix=prefix, **settings), **transports)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def bus_on(commands: CommandTransport) -> Iterator[Callable[..., Bus]]:
    yield from _buses(commands=commands)


@pytest.fixture
def events_bus_on(events: EventTransport) -> Iterator[Callable[..., Bus]]:
    yield from _buses(events=events)


def test_with_default_routes_sends_reach_only_the_queue_and_broadcasts_only_the_groups(bus_on):
    # the group is declared at start, so the broadcast below has somewhere to go
    bus = bus_on(routes={Ping.contract_name: {"groups": ["audit"]}})
    point, audit = Seen(), Seen()
    bus.handles(Ping)(point)
    bus.handles(Ping, group="audit")(audit)
    with bus:
        bus.send(Ping(n=1))
        bus.broadcast(Ping(n=2))
        point.wait_for(1)
        audit.wait_for(2)
        # a second pair fences the first: a broadcast the queue read (or a send the group
        # read) would have arrived before these
        bus.send(Ping(n=3))
        bus.broadcast(Ping(n=4))
        assert point.wait_for(3) == [1, 3]
        assert audit.wait_for(4) == [2, 4]


def test_broadcast_with_no_group_bound_is_rejected_even_when_the_queue_exists(bus_on):
    bus = bus_on()
    point = Seen()
    bus.handles(Ping)(point)
    with bus:
        bus.send(Ping(n=1))
        point.wait_for(1)  # the queue exists and is consumed
        with pytest.raises(PublishRejected, match="unroutable"):
            bus.broadcast(Ping(n=2))
        bus.send(Ping(n=3))
        assert point.wait_for(3) == [1, 3]


def test_with_default_routes_every_group_reads_every_event_each_key_in_order(events_bus_on):
    bus = events_bus_on(routes={Weighed.contract_name: {"partition_key": "parcel"}})
    groups = {"billing": Seen(), "audit": Seen()}
    for group, seen in groups.items():
        bus.subscribes(Weighed, group=group)(seen)
    with bus:
        bus.publish_many([Weighed(parcel=f"p{n % 4}", n=n) for n in range(40)])
        wait_until(
            lambda: all(len(seen.got()) >= 40 for seen in groups.values()),
            60,
            message=lambda: f"{ {g: len(s.got()) for g, s in groups.items()} }",
        )
    for seen in groups.values():
        numbers = seen.got()
        assert sorted(numbers) == list(range(40))
        for parcel in range(4):
            of_parcel = [n for n in numbers if n % 4 == parcel]
            assert of_parcel == sorted(of_parcel), f"p{parcel} out of order: {of_parcel}"
