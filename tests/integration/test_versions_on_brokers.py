"""Dual publishing and upcasting on the real event brokers, with both topic layouts."""

from __future__ import annotations

import uuid

import pytest

from tests.buses import bus_factory
from tests.versioned import dual_publish_story, replay_old_log_as_v3

BROKERS = [
    pytest.param("kafka_url", marks=pytest.mark.kafka, id="kafka"),
    pytest.param("redis_url", marks=pytest.mark.redis, id="redis"),
]


@pytest.fixture(params=BROKERS)
def make_bus(request):
    prefix = f"vers-{uuid.uuid4().hex[:8]}."
    events = request.getfixturevalue(request.param)
    with bus_factory(
        backends={"commands": f"memory://{prefix}", "events": events}, channel_prefix=prefix
    ) as make:
        yield make


@pytest.mark.parametrize("layout", ["shared", "per-version"])
def test_v1_and_v2_consumers_each_get_every_event_in_their_own_version(make_bus, layout):
    dual_publish_story(make_bus, layout)


def test_a_v3_consumer_replays_an_old_v1_log_with_upcast_values(make_bus):
    replay_old_log_as_v3(make_bus)
