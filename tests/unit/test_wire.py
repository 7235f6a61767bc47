"""Entries and messages as the adapters read them: hostile bytes end in a delivery, never in a
crashed consumer."""

import amqp

from interchange.adapters.message import ATTEMPT_HEADER, ID_HEADER
from interchange.adapters.rabbitmq.wire import from_amqp
from interchange.adapters.redis.wire import to_delivery


def test_a_redis_entry_becomes_a_delivery_with_its_position_and_text_headers():
    raw = {
        b"data": b'{"n": 1}',
        b"ce_id": b"m-1",
        b"x": "é".encode(),
        ATTEMPT_HEADER.encode(): b"2",
    }
    delivery = to_delivery("orders", b"1700000000000-3", raw, channel="orders", delivered=1)
    assert delivery.message.id == "m-1"
    assert delivery.message.body == b'{"n": 1}'
    assert delivery.message.headers == {"ce_id": "m-1", "x": "é"}
    assert delivery.attempt == 3  # two earlier deliveries carried over, and this one
    assert delivery.timestamp == 1_700_000_000
    assert delivery.position is not None
    assert delivery.position.offsets == ((0, (1_700_000_000_000 << 20) | 3),)


def test_a_redis_entry_with_invalid_utf8_and_a_digit_int_refuses_still_delivers():
    raw = {
        b"data": b"\xff",
        b"\xffname": b"\xfevalue",
        ID_HEADER.encode(): b"m-2",
        ATTEMPT_HEADER.encode(): "²".encode(),  # a digit to str.isdigit, not to int()
    }
    delivery = to_delivery("orders", b"1-0", raw, channel="orders")
    assert delivery.message.id == "m-2"
    assert delivery.message.headers == {"\ufffdname": "\ufffdvalue"}
    assert delivery.attempt == 1


def test_an_amqp_message_whose_counts_are_not_numbers_to_int_still_delivers():
    raw = amqp.Message(
        b"{}",
        message_id="m-3",
        application_headers={ATTEMPT_HEADER: "²", "x-delivery-count": "٣²"},
    )
    raw.delivery_info = {"redelivered": False}
    delivery, uncounted = from_amqp(raw, "orders")
    assert delivery.message.id == "m-3"
    assert delivery.attempt == 1
    assert uncounted is False
