"""The HTTP gateway under uvicorn on 127.0.0.1, on memory:// (brokers: test_gateway_on_brokers)."""

from __future__ import annotations

import concurrent.futures
import time
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from standardwebhooks import Webhook

from interchange import Bus, Command, Event, Settings
from interchange.connectors.http import IdempotencyStore, gateway
from interchange.testing import Recorder, wait_until
from tests.net import closed_port


class PlaceOrder(Command, name="http.place_order", version=1):
    order_id: str
    quantity: int


class Quote(Command, name="http.quote", version=1):
    sku: str


class Price(Command, name="http.price", version=1):
    sku: str
    cents: int


class OrderPlaced(Event, name="http.order_placed", version=1):
    order_id: str


class Hidden(Command, name="http.hidden", version=1):
    x: int


class BasketLine(BaseModel):
    sku: str
    tags: list[str] = []


class PlaceBasket(Command, name="http.place_basket", version=1):
    basket_id: str
    lines: list[BasketLine]
    notes: list[str] | None = None


EXPOSED = ["http.place_order", "http.quote", "http.order_placed"]


@pytest.fixture
def bus(make_bus) -> Bus:
    return make_bus(routes={"http.place_order": {"groups": ["audit"]}})


def test_every_verb_round_trips(bus, serve):
    orders, audit, events = Recorder(), Recorder(), Recorder()
    bus.handles(PlaceOrder)(orders)
    bus.handles(PlaceOrder, group="audit")(audit)
    bus.handles(Quote)(lambda cmd: Price(sku=cmd.sku, cents=250))
    bus.subscribes(OrderPlaced, group="billing")(events)
    client = serve(gateway(bus, EXPOSED))
    with bus:
        sent = client.post("/commands/http.place_order", json={"order_id": "A-1", "quantity": 2})
        cast = client.post("/broadcasts/http.place_order", json={"order_id": "B-1", "quantity": 1})
        published = client.post("/events/http.order_placed", json={"order_id": "A-1"})
        reply = client.post("/requests/http.quote", json={"sku": "TEA"})
        assert orders.wait_for(1) == [PlaceOrder(order_id="A-1", quantity=2)]
        assert audit.wait_for(1) == [PlaceOrder(order_id="B-1", quantity=1)]
        assert events.wait_for(1) == [OrderPlaced(order_id="A-1")]
    assert (sent.status_code, cast.status_code, published.status_code) == (202, 202, 202)
    assert sent.json()["id"] == orders.contexts[0].message_id
    assert published.json()["id"] == events.contexts[0].message_id
    assert (reply.status_code, reply.json()) == (200, {"sku": "TEA", "cents": 250})


def test_xml_bodies_map_to_the_contracts_fields(bus, serve):
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED))
    body = b"<order><order_id>X-9</order_id><quantity>3</quantity></order>"
    with bus:
        answer = client.post(
            "/commands/http.place_order", content=body, headers={"content-type": "application/xml"}
        )
        assert orders.wait_for(1) == [PlaceOrder(order_id="X-9", quantity=3)]
    assert answer.status_code == 202


def test_one_xml_element_under_a_list_field_is_a_one_element_list_nested_models_too(bus, serve):
    """XML cannot tell one item of a list from a single value: a basket of one line arrived
    as an object where a list was due, and was refused with a 422."""
    baskets = Recorder()
    bus.handles(PlaceBasket)(baskets)
    client = serve(gateway(bus, ["http.place_basket"]))
    one = (
        b"<basket><basket_id>B-1</basket_id><notes>fragile</notes>"
        b"<lines><sku>TEA</sku><tags>green</tags></lines></basket>"
    )
    two = (
        b"<basket><basket_id>B-2</basket_id><notes/>"
        b"<lines><sku>TEA</sku><tags>green</tags><tags>loose</tags></lines>"
        b"<lines><sku>CUP</sku></lines></basket>"
    )
    xml = {"content-type": "application/xml"}
    with bus:
        answers = [
            client.post("/commands/http.place_basket", content=b, headers=xml) for b in (one, two)
        ]
        assert [a.status_code for a in answers] == [202, 202], answers[0].json()
        assert baskets.wait_for(2) == [
            PlaceBasket(
                basket_id="B-1", notes=["fragile"], lines=[BasketLine(sku="TEA", tags=["green"])]
            ),
            PlaceBasket(
                basket_id="B-2",
                notes=[],
                lines=[BasketLine(sku="TEA", tags=["green", "loose"]), BasketLine(sku="CUP")],
            ),
        ]


def test_xml_with_a_doctype_or_entities_is_refused_never_resolved(bus, serve):
    client = serve(gateway(bus, EXPOSED))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<o><order_id>&e;</order_id><quantity>1</quantity></o>"
    )
    answer = client.post(
        "/commands/http.place_order", content=bomb, headers={"content-type": "application/xml"}
    )
    assert answer.status_code == 400
    assert "DOCTYPE" in answer.json()["error"]


def test_each_bad_request_gets_its_status_and_reason(bus, serve):
    client = serve(gateway(bus, EXPOSED, max_body_bytes=200))
    invalid = client.post("/commands/http.place_order", json={"quantity": "many", "extra": 1})
    assert invalid.status_code == 422
    assert {(tuple(e["loc"]), e["msg"]) for e in invalid.json()["errors"]} == {
        (("order_id",), "Field required"),
        (("quantity",), "Input should be a valid integer, unable to parse string as an integer"),
        (("extra",), "Extra inputs are not permitted"),
    }
    too_big = client.post("/commands/http.place_order", content=b"{" + b" " * 300 + b"}")
    assert too_big.status_code == 413
    assert too_big.json() == {"error": "body over 200 bytes"}
    form = client.post(
        "/commands/http.place_order", content=b"a=1", headers={"content-type": "text/csv"}
    )
    assert form.status_code == 415
    assert "unsupported content type 'text/csv'" in form.json()["error"]
    assert client.post("/commands/http.hidden", json={"x": 1}).status_code == 404
    assert client.post("/events/http.place_order", json={}).status_code == 404  # not an event


def test_api_keys_401_without_403_wrong_and_never_logged(bus, serve, caplog):
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED, api_keys={"shop": "k-secret-1"}))
    body = {"order_id": "A-1", "quantity": 1}
    with bus:
        missing = client.post("/commands/http.place_order", json=body)
        wrong = client.post("/commands/http.place_order", json=body, headers={"x-api-key": "nope"})
        right = client.post(
            "/commands/http.place_order", json=body, headers={"authorization": "Bearer k-secret-1"}
        )
        orders.wait_for(1)
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 403, 202)
    assert "k-secret-1" not in caplog.text


def test_neither_primary_nor_fallback_storing_is_503_with_retry_after_never_202(serve):
    port = closed_port()
    down = Bus(
        Settings.without_environment(
            backends={
                "commands": f"amqp://127.0.0.1:{port}//?connect_timeout=1",
                "events": "memory://down",
                "fallback": f"redis://127.0.0.1:{port}/0",
                "fallback_timeout": 1,
            }
        )
    )
    client = serve(gateway(down, EXPOSED))
    answer = client.post("/commands/http.place_order", json={"order_id": "A-1", "quantity": 1})
    down.close()
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "could not be stored" in answer.json()["error"]


def test_an_idempotency_key_retry_is_answered_again_and_handled_once(bus, serve):
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED))
    body = {"order_id": "A-1", "quantity": 1}
    key = {"idempotency-key": "retry-1"}
    with bus:
        first = client.post("/commands/http.place_order", json=body, headers=key)
        again = client.post("/commands/http.place_order", json=body, headers=key)
        other = client.post("/commands/http.place_order", json={**body, "quantity": 9}, headers=key)
        orders.wait_for(1)
        time.sleep(0.1)  # a second delivery would show up; not a wait for a result
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert other.status_code == 422
    assert len(orders) == 1


def test_two_concurrent_requests_with_one_key_give_one_message_and_a_409(bus, serve):
    calls = []

    def slow_quote(cmd):
        calls.append(cmd.sku)
        time.sleep(1.0)
        return Price(sku=cmd.sku, cents=1)

    bus.handles(Quote)(slow_quote)
    client = serve(gateway(bus, EXPOSED))
    with bus, concurrent.futures.ThreadPoolExecutor(2) as pool:
        post = lambda: client.post(  # noqa: E731
            "/requests/http.quote", json={"sku": "TEA"}, headers={"idempotency-key": "k"}
        )
        first = pool.submit(post)
        wait_until(lambda: calls == ["TEA"])
        second = pool.submit(post).result()
        assert first.result().status_code == 200
    assert second.status_code == 409
    assert calls == ["TEA"]


def test_keys_are_scoped_per_api_key_and_a_503_does_not_use_one_up(bus, serve):
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    store = IdempotencyStore()
    client = serve(gateway(bus, EXPOSED, api_keys={"a": "key-a", "b": "key-b"}, idempotency=store))
    body = {"order_id": "A-1", "quantity": 1}
    with bus:
        for api_key in ("key-a", "key-b"):
            client.post(
                "/commands/http.place_order",
                json=body,
                headers={"x-api-key": api_key, "idempotency-key": "same"},
            )
        orders.wait_for(2)
    assert len({ctx.message_id for ctx in orders.contexts}) == 2
    # a first attempt that failed left nothing behind:
    store.begin("a", "fresh", "fp")
    store.abandon("a", "fresh")
    assert store.begin("a", "fresh", "fp") == ("new", None)


def test_client_headers_never_set_the_message_id_or_cloudevents_attributes(bus, serve):
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED))
    spoof = {
        "ce-id": "spoofed",
        "ce_id": "spoofed",
        "ce-type": "http.hidden",
        "x-interchange-id": "spoofed",
    }
    with bus:
        answer = client.post(
            "/commands/http.place_order", json={"order_id": "A-1", "quantity": 1}, headers=spoof
        )
        orders.wait_for(1)
    assert answer.json()["id"] != "spoofed"
    assert orders.contexts[0].message_id == answer.json()["id"]
    assert orders.contexts[0].envelope.type == "http.place_order"


def _signed(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, now, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def test_standard_webhooks_signatures_on_the_raw_bytes_with_rotation_and_replay(bus, serve):
    old, new = "whsec_" + "b2xkLXNlY3JldC0xMjM0NTY3OA==", "whsec_" + "bmV3LXNlY3JldC0xMjM0NTY3OA=="
    orders = Recorder()
    bus.handles(PlaceOrder)(orders)
    client = serve(gateway(bus, EXPOSED, webhook_secrets=[old, new]))
    body = b'{"order_id": "W-1",   "quantity": 1}'  # spacing kept: signatures are on the bytes
    with bus:
        by_new = client.post(
            "/commands/http.place_order", content=body, headers=_signed(new, body, "msg-1")
        )
        replayed = client.post(
            "/commands/http.place_order", content=body, headers=_signed(new, body, "msg-1")
        )
        headers = _signed(old, body, "msg-2")
        headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]  # rotation
        by_old = client.post("/commands/http.place_order", content=body, headers=headers)
        forged = _signed(new, body, "msg-3")
        tampered = client.post(
            "/commands/http.place_order", content=body.replace(b"W-1", b"W-9"), headers=forged
        )
        unsigned = client.post("/commands/http.place_order", content=body)
        orders.wait_for(2)
        time.sleep(0.1)  # a replayed webhook would show up; not a wait for a result
    assert (by_new.status_code, replayed.status_code, by_old.status_code) == (202, 202, 202)
    assert replayed.json() == by_new.json()
    assert (tampered.status_code, unsigned.status_code) == (403, 401)
    assert len(orders) == 2


def test_the_openapi_document_describes_the_exposed_contracts(bus, serve):
    client = serve(gateway(bus, EXPOSED))
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/commands/http.place_order",
        "/broadcasts/http.place_order",
        "/requests/http.place_order",
        "/commands/http.quote",
        "/broadcasts/http.quote",
        "/requests/http.quote",
        "/events/http.order_placed",
    }
    body = document["paths"]["/commands/http.place_order"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["schema"]["properties"]) == {
        "order_id",
        "quantity",
    }
    assert client.get("/docs").status_code == 200


def test_an_idempotency_message_id_is_the_same_in_any_gateway_process():
    from interchange.connectors.http.idempotency import message_id

    assert message_id("shop", "k-1") == message_id("shop", "k-1")
    assert message_id("shop", "k-1") != message_id("other", "k-1")
    assert message_id("shop", "k-1").startswith("idem-")


def test_a_body_that_is_not_json_at_all_is_400(bus, serve):
    client = serve(gateway(bus, EXPOSED))
    answer = client.post(
        "/commands/http.place_order",
        content=b'{"order_id": ',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("body is not valid JSON")
