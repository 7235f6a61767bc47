"""Webhooks fed by the real Kafka: a receiver that fails now and then still gets every event,
in order per key, once after it dedupes by webhook-id."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from standardwebhooks import Webhook
from werkzeug import Request, Response

from interchange import Bus, Event, Settings
from interchange.config import RetryPolicy, WebhookEndpoint
from interchange.connectors.http.webhooks import WebhookSink
from interchange.testing import wait_until

pytestmark = pytest.mark.kafka
SECRET = "whsec_" + "bmV3LXNlY3JldC0xMjM0NTY3OA=="


class Weighed(Event, name="hooks.weighed", version=1):
    parcel: str
    n: int


def test_every_event_reaches_a_flaky_receiver_in_order_per_key(kafka_url, httpserver):
    seen: dict[str, bytes] = {}
    arrivals: list[tuple[str, int]] = []
    lock = threading.Lock()
    flaky = itertools.cycle([200, 200, 500, 200, 503])

    def receive(request: Request) -> Response:
        status = next(flaky)
        if status != 200:
            return Response(b"busy", status)
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.get_data()
        Webhook(SECRET).verify(body, headers)
        event = Weighed.model_validate_json(body)
        with lock:
            if headers["webhook-id"] not in seen:  # the receiver dedupes by webhook-id
                seen[headers["webhook-id"]] = body
                arrivals.append((event.parcel, event.n))
        return Response(b"", 204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://hooks", "events": kafka_url},
            channel_prefix=f"hooks-{uuid.uuid4().hex[:8]}.",
            routes={"hooks.weighed": {"partition_key": "parcel"}},
        )
    )
    sink = WebhookSink(
        WebhookEndpoint(
            name="scale",
            url=httpserver.url_for("/hook"),
            events=["hooks.weighed"],
            secrets=[SECRET],
            allow_private=True,
            retry=RetryPolicy(max_attempts=10, initial_delay=0.02, max_delay=0.1),
        )
    )
    sink.attach(bus)
    try:
        with bus:
            bus.publish_many([Weighed(parcel=f"p{n % 4}", n=n) for n in range(60)])
            wait_until(lambda: len(seen) == 60, 60)
    finally:
        bus.close()
        sink.close()
    for parcel in ("p0", "p1", "p2", "p3"):
        ns = [n for p, n in arrivals if p == parcel]
        assert ns == list(range(int(parcel[1]), 60, 4)), (parcel, ns)


@pytest.mark.parametrize("start", [None, "earliest"])
def test_a_new_endpoint_gets_the_history_only_when_it_starts_at_earliest(
    kafka_url, httpserver, start
):
    arrived: list[int] = []
    lock = threading.Lock()

    def receive(request: Request) -> Response:
        with lock:
            arrived.append(Weighed.model_validate_json(request.get_data()).n)
        return Response(b"", 204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://hooks", "events": kafka_url},
            channel_prefix=f"hooks-{uuid.uuid4().hex[:8]}.",
            routes={"hooks.weighed": {"partition_key": "parcel"}},
        )
    )
    # one key, so one partition, in order: had the history been sent, it came first
    bus.publish_many([Weighed(parcel="p", n=n) for n in range(5)])
    options = {} if start is None else {"start": start}
    sink = WebhookSink(
        WebhookEndpoint(
            name="added-later",
            url=httpserver.url_for("/hook"),
            events=["hooks.weighed"],
            allow_private=True,
            **options,
        )
    )
    sink.attach(bus)
    try:
        with bus:
            bus.publish(Weighed(parcel="p", n=5))  # before the group's member got a partition
            wait_until(lambda: 5 in arrived, 60)
    finally:
        bus.close()
        sink.close()
    assert arrived == ([5] if start is None else [0, 1, 2, 3, 4, 5])
