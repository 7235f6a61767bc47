"""Dual publishing and upcasting through the Bus on memory://."""

from __future__ import annotations

import pytest

from interchange.testing import Recorder, wait_until
from tests.versioned import (
    NAME,
    ShipmentV1,
    ShipmentV2,
    ShipmentV3,
    dual_publish_story,
    replay_old_log_as_v3,
)


@pytest.mark.parametrize("layout", ["shared", "per-version"])
def test_v1_and_v2_consumers_each_get_every_event_in_their_own_version(make_bus, layout):
    dual_publish_story(make_bus, layout)


def test_the_per_version_layout_writes_one_topic_per_version(make_bus):
    bus = make_bus(routes={NAME: {"versions": [1, 2], "layout": "per-version"}})
    bus.publish(ShipmentV2(shipment_id="s", kilograms=1.0, carrier="ups"))
    assert bus.topic_of(ShipmentV1) == f"{NAME}.v1"
    assert bus.topic_of(ShipmentV2) == f"{NAME}.v2"
    v1 = [d.message.headers["ce_dataversion"] for d in bus.events.replay(f"{NAME}.v1")]
    v2 = [d.message.headers["ce_dataversion"] for d in bus.events.replay(f"{NAME}.v2")]
    assert (v1, v2) == (["1"], ["2"])


def test_a_v3_consumer_replays_an_old_v1_log_with_upcast_values(make_bus):
    replay_old_log_as_v3(make_bus)


def test_a_version_with_no_converter_is_dead_lettered_with_the_missing_step(make_bus):
    bus = make_bus()
    seen, dead = Recorder(), []
    bus.subscribes(ShipmentV1, group="v1-only")(seen)
    bus.handles_dead_letters(ShipmentV1, group="v1-only")(dead.append)
    with bus:
        bus.publish(ShipmentV3(shipment_id="x", kilograms=1, carrier="c", insured=True))
        wait_until(lambda: len(dead) == 1)
    assert len(seen) == 0
    assert dead[0].reason.startswith(
        "no converter from v3 to v1 of test.versions.shipment_weighed (missing v3 -> v2)"
    )
