"""The HTTP gateway on the real brokers: every verb round-trips, a retried POST is handled once."""

from __future__ import annotations

import time
import uuid

import pytest

from interchange import Bus, Settings
from interchange.connectors.http import gateway
from interchange.testing import Recorder
from tests.http.test_gateway import EXPOSED, OrderPlaced, PlaceOrder, Price, Quote

pytestmark = [pytest.mark.amqp, pytest.mark.kafka]


def test_every_verb_round_trips_over_rabbitmq_and_kafka(amqp_url, kafka_url, serve):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": amqp_url, "events": kafka_url},
            channel_prefix=f"gw-{uuid.uuid4().hex[:8]}.",
            routes={"http.place_order": {"groups": ["audit"]}},
        )
    )
    orders, audit, events = Recorder(), Recorder(), Recorder()
    bus.handles(PlaceOrder)(orders)
    bus.handles(PlaceOrder, group="audit")(audit)
    bus.handles(Quote)(lambda cmd: Price(sku=cmd.sku, cents=7))
    bus.subscribes(OrderPlaced, group="billing")(events)
    client = serve(gateway(bus, EXPOSED))
    body = {"order_id": "A-1", "quantity": 2}
    try:
        with bus:
            key = {"idempotency-key": "retry-after-timeout"}
            sent = client.post("/commands/http.place_order", json=body, headers=key)
            again = client.post("/commands/http.place_order", json=body, headers=key)
            cast = client.post("/broadcasts/http.place_order", json=body)
            published = client.post("/events/http.order_placed", json={"order_id": "A-1"})
            reply = client.post("/requests/http.quote", json={"sku": "TEA"})
            assert orders.wait_for(1, 30) == [PlaceOrder(**body)]
            assert audit.wait_for(1, 30) == [PlaceOrder(**body)]
            assert events.wait_for(1, 30) == [OrderPlaced(order_id="A-1")]
            time.sleep(0.2)  # a second delivery of the retried POST would show up; not a wait
    finally:
        bus.close()
    assert [r.status_code for r in (sent, again, cast, published)] == [202, 202, 202, 202]
    assert sent.json() == again.json()
    assert len(orders) == 1
    assert (reply.status_code, reply.json()) == (200, {"sku": "TEA", "cents": 7})
