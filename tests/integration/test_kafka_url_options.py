"""A kafka:// URL's dotted options reach only the clients they concern: a consumer-only
property is not handed to the producer or admin client (librdkafka would log a CONFWARN and
ignore it), a producer-only one not to consumers."""

from __future__ import annotations

import logging
import threading
import uuid

import pytest

from interchange.adapters.kafka.transport import KafkaEventTransport
from interchange.adapters.message import ACK, Delivery, TransportMessage
from interchange.testing import wait_until

pytestmark = pytest.mark.kafka


def test_consumer_and_producer_only_url_options_cause_no_confwarn(kafka_url, caplog):
    caplog.set_level(logging.DEBUG, logger="interchange.adapters.kafka")
    url = f"{kafka_url}?session.timeout.ms=30000&linger.ms=2"
    transport = KafkaEventTransport(url)
    topic = f"options-{uuid.uuid4().hex[:10]}"
    got: list[str] = []
    lock = threading.Lock()

    def handle(delivery: Delivery) -> object:
        with lock:
            got.append(delivery.message.id)
        return ACK

    try:
        transport.publish(topic, TransportMessage("first", b"x"))
        transport.subscribe(topic, f"g-{uuid.uuid4().hex[:8]}", handle, start="earliest")
        wait_until(lambda: got == ["first"], 20, message=lambda: f"got {got}")
    finally:
        transport.close()
    warnings = [r.getMessage() for r in caplog.records if "CONFWARN" in r.getMessage()]
    assert warnings == []
