"""Webhooks: events POSTed to a real HTTP receiver on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook
from werkzeug import Request, Response

from interchange import Event
from interchange.config import RetryPolicy, WebhookEndpoint
from interchange.connectors.http.webhooks import WebhookSink, check_target, retry_after
from interchange.testing import wait_until

SECRET_OLD = "whsec_" + "b2xkLXNlY3JldC0xMjM0NTY3OA=="
SECRET_NEW = "whsec_" + "bmV3LXNlY3JldC0xMjM0NTY3OA=="


class Shipped(Event, name="hooks.shipped", version=1):
    parcel: str


class Receiver:
    """Answers each POST with the next scripted status (then 200), records what arrived."""

    def __init__(self, script: list[int | tuple[int, dict[str, str], bytes]] | None = None):
        self.script = list(script or [])
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.requests.append((time.monotonic(), dict(request.headers), request.get_data()))
            step = self.script.pop(0) if self.script else 200
        status, headers, body = step if isinstance(step, tuple) else (step, {}, b"")
        return Response(body, status, headers)

    def ids(self) -> list[str]:
        return [headers["Webhook-Id"] for _, headers, _ in self.requests]


@pytest.fixture
def hook(httpserver, make_bus):
    """hook(receiver, **endpoint options) -> (bus, dead letters): a bus whose Shipped events
    go to the receiver's URL."""

    def build(receiver: Receiver, **options):
        httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
        bus = make_bus()
        dead = []
        bus.handles_dead_letters(Shipped, group="webhook.receiver")(dead.append)
        values = {
            "secrets": [SECRET_NEW],
            "retry": RetryPolicy(max_attempts=5, initial_delay=0.05, max_delay=0.2),
            **options,
        }
        endpoint = WebhookEndpoint(
            name="receiver",
            url=httpserver.url_for("/hook"),
            events=["hooks.shipped"],
            allow_private=True,
            **values,
        )
        sink = WebhookSink(endpoint)
        sink.attach(bus)
        return bus, dead, sink

    return build


def test_a_delivery_carries_standard_webhooks_and_cloudevents_headers(hook):
    receiver = Receiver()
    bus, _, sink = hook(receiver)
    with bus:
        sent = bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(receiver.requests) == 1)
    sink.close()
    _, headers, body = receiver.requests[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    Webhook(SECRET_NEW).verify(body, lowered)  # raises unless the signature holds
    assert lowered["webhook-id"] == lowered["ce-id"] == sent
    assert lowered["ce-type"] == "hooks.shipped"
    assert lowered["ce-specversion"] == "1.0"
    assert lowered["content-type"] == "application/json"
    assert body == b'{"parcel":"P-1"}'


def test_failures_are_retried_with_the_same_id_and_body_until_delivered(hook):
    receiver = Receiver([500, 408, 200])
    bus, dead, sink = hook(receiver)
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(receiver.requests) == 3)
        time.sleep(0.2)  # a fourth request would show up; not a wait for a result
    sink.close()
    assert len(set(receiver.ids())) == 1
    assert len({body for _, _, body in receiver.requests}) == 1
    for _, headers, body in receiver.requests:
        Webhook(SECRET_NEW).verify(body, {k.lower(): v for k, v in headers.items()})
    assert dead == []


def test_a_receiver_that_goes_away_and_returns_gets_every_event_once_after_dedupe(hook, httpserver):
    receiver = Receiver([503, 500, 500])
    bus, dead, sink = hook(
        receiver, retry=RetryPolicy(max_attempts=100, initial_delay=0.05, max_delay=0.1)
    )
    with bus:
        for n in range(5):
            bus.publish(Shipped(parcel=f"P-{n}"))
        wait_until(lambda: len(receiver.requests) >= 2)
        httpserver.stop()  # the receiver goes away for a while, P-0 still undelivered
        time.sleep(0.5)  # deliveries fail meanwhile; not a wait for a result
        back = time.monotonic()
        httpserver.start()
        wait_until(lambda: len(set(receiver.ids())) == 5, 30)
    sink.close()
    first_bodies = {}
    for _, headers, body in receiver.requests:
        first_bodies.setdefault(headers["Webhook-Id"], body)  # the receiver dedupes by id
        Webhook(SECRET_NEW).verify(body, {k.lower(): v for k, v in headers.items()})
    assert sorted(first_bodies.values()) == sorted(
        Shipped(parcel=f"P-{n}").model_dump_json().encode() for n in range(5)
    )
    assert receiver.script == []
    assert receiver.requests[3][0] > back, "P-0 was delivered only after the receiver returned"
    order = [body for _, _, body in receiver.requests]
    firsts = sorted(set(order), key=order.index)
    assert firsts == [Shipped(parcel=f"P-{n}").model_dump_json().encode() for n in range(5)]
    assert dead == []


def test_a_400_is_dead_lettered_at_once_with_the_status_and_the_answer(hook):
    receiver = Receiver([(400, {}, b"parcel unknown to this system")])
    bus, dead, sink = hook(receiver)
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(dead) == 1)
    sink.close()
    assert len(receiver.requests) == 1
    assert dead[0].attempts == 1
    assert "answered 400: parcel unknown to this system" in dead[0].reason


def test_410_stops_delivering_to_the_endpoint(hook):
    receiver = Receiver([410])
    bus, dead, sink = hook(receiver)
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        bus.publish(Shipped(parcel="P-2"))
        wait_until(lambda: len(dead) == 2)
    sink.close()
    assert len(receiver.requests) == 1
    assert all("410 Gone: delivery to it stopped" in record.reason for record in dead)


def test_a_429_waits_what_retry_after_says(hook):
    receiver = Receiver([(429, {"Retry-After": "1"}, b"")])
    bus, _, sink = hook(receiver)
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(receiver.requests) == 2, 10)
    sink.close()
    (first, *_), (second, *_) = receiver.requests
    assert second - first >= 0.9


def test_a_redirect_is_a_failure_and_is_not_followed(hook, httpserver):
    elsewhere = Receiver()
    httpserver.expect_request("/elsewhere").respond_with_handler(elsewhere)
    receiver = Receiver([(302, {"Location": httpserver.url_for("/elsewhere")}, b"")] * 5)
    bus, dead, sink = hook(receiver, retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(dead) == 1)
    sink.close()
    assert elsewhere.requests == []
    assert len(receiver.requests) == 2
    assert "302" in dead[0].reason


def test_during_a_secret_rotation_each_delivery_is_signed_with_both(hook):
    receiver = Receiver()
    bus, _, sink = hook(receiver, secrets=[SECRET_OLD, SECRET_NEW])
    with bus:
        bus.publish(Shipped(parcel="P-1"))
        wait_until(lambda: len(receiver.requests) == 1)
    sink.close()
    _, headers, body = receiver.requests[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert len(lowered["webhook-signature"].split(" ")) == 2
    Webhook(SECRET_OLD).verify(body, lowered)
    Webhook(SECRET_NEW).verify(body, lowered)


def test_private_and_loopback_targets_are_refused_unless_allowed():
    with pytest.raises(ValueError, match="private or loopback"):
        check_target("http://127.0.0.1:9/hook", allow_private=False)
    with pytest.raises(ValueError, match="private or loopback"):
        check_target("http://10.1.2.3/hook", allow_private=False)
    check_target("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(ValueError, match=r"must be http\(s\)"):
        check_target("ftp://example.invalid/x", allow_private=True)


def test_retry_after_as_seconds_or_an_http_date_is_capped():
    assert retry_after("7", 300) == 7
    assert retry_after("9999", 300) == 300
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after(later, 300) or 0) <= 30
    assert retry_after("soon", 300) is None
    assert retry_after(None, 300) is None


def test_one_keys_backoff_never_delays_other_keys(hook):
    released = threading.Event()
    failed: list[float] = []

    class Picky(Receiver):
        """Answers 503 to S-1 until released; everything else as scripted."""

        def __call__(self, request: Request) -> Response:
            if b'"S-1"' in request.get_data() and not released.is_set():
                failed.append(time.monotonic())
                return Response(b"busy", 503)
            return super().__call__(request)

    receiver = Picky()
    bus, dead, sink = hook(
        receiver, retry=RetryPolicy(max_attempts=100, initial_delay=0.3, max_delay=0.3)
    )
    bodies = lambda: [body for _, _, body in receiver.requests]  # noqa: E731
    with bus:
        bus.publish(Shipped(parcel="S-1"), key="s")
        bus.publish(Shipped(parcel="S-2"), key="s")
        for n in range(20):
            bus.publish(Shipped(parcel=f"F-{n}"), key=f"f{n % 5}")
        wait_until(lambda: sum(b"F-" in body for body in bodies()) == 20, 20)
        assert failed, "S-1 was tried and refused"
        assert not any(b'"S-2"' in body for body in bodies()), "S-2 waits behind S-1"
        released.set()
        wait_until(lambda: any(b'"S-2"' in body for body in bodies()), 20)
    sink.close()
    keyed = [body for body in bodies() if b'"S-' in body]
    assert keyed == [b'{"parcel":"S-1"}', b'{"parcel":"S-2"}']
    for n in range(5):  # each key's events in publish order
        mine = [body for body in bodies() if body.startswith(b'{"parcel":"F-')]
        seq = [int(b.split(b"-")[1].split(b'"')[0]) for b in mine]
        assert [s for s in seq if s % 5 == n] == list(range(n, 20, 5))
    assert dead == []


def test_a_misspelled_start_is_a_config_error_with_a_did_you_mean():
    with pytest.raises(
        ValueError, match=r"start 'earlist' is not one of .*did you mean 'earliest'"
    ):
        WebhookEndpoint(name="x", url="https://example.com/h", events=["e"], start="earlist")
    assert WebhookEndpoint(name="x", url="https://example.com/h", events=["e"]).start == "latest"
