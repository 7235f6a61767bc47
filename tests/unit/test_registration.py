"""Mistakes that used to pass silently fail when they are made: two handlers competing for one
queue or group, a misspelled start, a partition key the contract lacks, a route for a contract
nobody declared."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from interchange import (
    Bus,
    ConfigurationWarning,
    DuplicateHandler,
    InvalidRoute,
    Position,
    Settings,
)
from interchange.adapters.memory import CAPABILITIES
from interchange.contracts import Command, Event
from interchange.registrations import check_start
from interchange.testing import wait_until


class Charge(Command, name="unit.registration.charge", version=1):
    n: int


class Charged(Event, name="unit.registration.charged", version=1):
    order_id: str
    n: int

    @property
    def region(self) -> str:
        return self.order_id.split("-")[0]


def test_a_second_handler_for_one_command_without_group_is_refused_and_names_group(make_bus):
    """RabbitMQ split 20 commands 10/10 between two such handlers on one Bus: each did part
    of the work the service meant both to do. The second is refused; the first gets all."""
    bus = make_bus()
    first: list[int] = []
    bus.handles(Charge)(lambda cmd: first.append(cmd.n))

    def audit(cmd: Charge) -> None:
        raise AssertionError("a refused handler must never run")

    with pytest.raises(DuplicateHandler, match=r"would compete .* group= of its own") as refused:
        bus.handles(Charge)(audit)
    assert "<lambda>" in str(refused.value), "the error names the handler already there"
    assert [h.func for h in bus.handlers] == [bus.handlers[0].func]
    with bus:
        for n in range(20):
            bus.send(Charge(n=n))
        wait_until(lambda: len(first) == 20)
    assert sorted(first) == list(range(20))


def test_the_same_handler_registered_twice_is_refused_pointing_at_concurrency(make_bus):
    bus = make_bus()

    def charge(cmd: Charge) -> None: ...

    bus.handles(Charge)(charge)
    with pytest.raises(DuplicateHandler, match=r"charge already handles .*concurrency=N"):
        bus.handles(Charge)(charge)
    assert len(bus.handlers) == 1


def test_handlers_in_groups_of_their_own_each_get_every_broadcast(make_bus):
    bus = make_bus()
    seen: dict[str, list[int]] = {"audit": [], "cache": []}
    bus.handles(Charge, group="audit")(lambda cmd: seen["audit"].append(cmd.n))
    bus.handles(Charge, group="cache")(lambda cmd: seen["cache"].append(cmd.n))
    with pytest.raises(DuplicateHandler, match=r"group .*'audit'.* compete for the group"):
        bus.handles(Charge, group="audit")(lambda cmd: None)
    with bus:
        for n in range(5):
            bus.broadcast(Charge(n=n))
        wait_until(lambda: len(seen["audit"]) == len(seen["cache"]) == 5)
    assert sorted(seen["audit"]) == sorted(seen["cache"]) == list(range(5))


def test_two_handlers_in_one_consumer_group_are_refused_other_groups_read_everything(make_bus):
    bus = make_bus()
    billing: list[int] = []
    shipping: list[int] = []
    bus.subscribes(Charged, group="billing")(lambda evt: billing.append(evt.n))
    with pytest.raises(DuplicateHandler, match=r"consumer group 'billing' .*neither sees all"):
        bus.subscribes(Charged, group="billing")(lambda evt: None)
    bus.subscribes(Charged, group="shipping")(lambda evt: shipping.append(evt.n))
    with bus:
        for n in range(10):
            bus.publish(Charged(order_id=f"eu-{n}", n=n))
        wait_until(lambda: len(billing) == len(shipping) == 10)
    assert billing == shipping == list(range(10))


def test_a_second_dead_letter_reader_of_one_channel_is_refused(make_bus):
    bus = make_bus()
    bus.handles_dead_letters(Charge)(print)
    with pytest.raises(DuplicateHandler, match="already has a dead-letter reader"):
        bus.handles_dead_letters(Charge)(lambda record: None)
    bus.handles_dead_letters(Charge, group="audit")(print)  # another channel: fine


def test_a_misspelled_start_is_refused_at_registration_with_a_did_you_mean(make_bus):
    """On Kafka start="earlist" became auto.offset.reset=earliest without a word (anything
    but "latest" did); on memory:// it failed only once the Bus started."""
    bus = make_bus()
    with pytest.raises(ValueError, match=r"start='earlist' .*did you mean 'earliest'\?"):
        bus.subscribes(Charged, group="g", start="earlist")(print)
    with pytest.raises(ValueError, match=r"did you mean 'latest'\?"):
        bus.subscribes(Charged, group="g", start="lastest")(print)
    assert bus.handlers == []


def test_every_documented_start_is_accepted_and_anything_else_refused(make_bus):
    bus = make_bus()
    for n, start in enumerate(
        ["earliest", "latest", 3, datetime(2026, 1, 1, tzinfo=UTC), Position.at({0: 2})]
    ):
        bus.subscribes(Charged, group=f"ok-{n}", start=start)(print)
    for start, error in [(True, TypeError), (-1, ValueError), ("beginning", ValueError)]:
        with pytest.raises(error, match="start takes 'earliest', 'latest'"):
            bus.subscribes(Charged, group=f"bad-{start}", start=start)(print)
    assert len(bus.handlers) == 5


def test_an_offset_start_is_refused_where_the_backend_numbers_no_records():
    unnumbered = replace(CAPABILITIES, offsets=False)  # Redis streams
    with pytest.raises(TypeError, match="does not number its records"):
        check_start(5, unnumbered)
    check_start(5, CAPABILITIES)


def test_a_partition_key_the_contract_lacks_is_an_error_when_the_bus_is_built(memory_url):
    """It used to be an AttributeError at the first publish."""
    routes = {Charged.contract_name: {"partition_key": "orderid"}}
    settings = Settings.without_environment(
        backends={"commands": memory_url, "events": memory_url}, routes=routes
    )
    with pytest.raises(InvalidRoute, match=r"'orderid' .*did you mean 'order_id'\?.*n, order_id"):
        Bus(settings)


def test_a_partition_key_is_checked_when_the_contract_is_declared_after_the_bus(make_bus):
    name = f"unit.registration.late.{uuid.uuid4().hex[:8]}"
    bus = make_bus(routes={name: {"partition_key": "parcle"}})

    class Late(Event, name=name, version=1):
        parcel: str

    with pytest.raises(InvalidRoute, match=r"'parcle' .*did you mean 'parcel'\?"):
        bus.subscribes(Late, group="g")(print)
    with pytest.raises(InvalidRoute, match=r"did you mean 'parcel'\?"):
        bus.publish(Late(parcel="p-1"))  # a publisher that never registers or starts
    with pytest.raises(InvalidRoute, match=r"did you mean 'parcel'\?"):
        bus.publish_many([Late(parcel="p-1")])


def test_a_property_may_be_the_partition_key(make_bus):
    bus = make_bus(routes={Charged.contract_name: {"partition_key": "region"}})
    seen: list[str | None] = []
    bus.subscribes(Charged, group="g")(lambda evt, ctx: seen.append(ctx.envelope.partition_key))
    with bus:
        bus.publish(Charged(order_id="eu-1", n=1))
        wait_until(lambda: seen == ["eu"])


def test_a_route_for_a_contract_nobody_declared_warns_at_start_with_a_did_you_mean(make_bus):
    bus = make_bus(routes={"unit.registration.chargd": {"queue": "charges"}})
    bus.handles(Charge)(print)
    with pytest.warns(ConfigurationWarning, match=r"did you mean 'unit.registration.charged'"):
        bus.start()
    bus.stop()


def test_routes_for_declared_contracts_start_without_a_warning(make_bus):
    bus = make_bus(routes={Charge.contract_name: {"queue": f"charges-{uuid.uuid4().hex[:6]}"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigurationWarning)
        bus.start()
    bus.stop()
