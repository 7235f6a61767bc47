"""Each real broker over its real port, through its raw client: a message in, the same out.

These prove the brokers the suite runs against are there and behave; the adapters' own
integration tests build on them.
"""

from __future__ import annotations

import time
import uuid

import pytest


@pytest.mark.amqp
def test_rabbitmq_returns_the_message_it_was_given(amqp_url):
    from kombu import Connection

    queue = f"smoke-{uuid.uuid4().hex[:10]}"
    body = {"hello": "rabbit", "n": 1}
    with Connection(amqp_url, connect_timeout=5) as connection:
        simple = connection.SimpleQueue(queue, serializer="json")
        try:
            simple.put(body, headers={"cloudEvents_id": "smoke-1"})
            message = simple.get(block=True, timeout=10)
            message.ack()
        finally:
            simple.close()
            connection.default_channel.queue_delete(queue)
        assert message.payload == body
        assert message.headers["cloudEvents_id"] == "smoke-1"


@pytest.mark.kafka
def test_kafka_returns_the_record_it_was_given(kafka_url):
    from confluent_kafka import Consumer, Producer

    servers = kafka_url.removeprefix("kafka://")
    topic = f"smoke-{uuid.uuid4().hex[:10]}"
    reports = []
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True})
    producer.produce(
        topic,
        b"hello kafka",
        key=b"k1",
        headers={"ce_id": b"smoke-1"},
        on_delivery=lambda err, msg: reports.append(err),
    )
    assert producer.flush(30) == 0
    assert reports == [None], "the broker must acknowledge the record"
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"smoke-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        record = None
        while record is None and time.monotonic() < deadline:
            polled = consumer.poll(0.5)
            if polled is not None and polled.error() is None:
                record = polled
        assert record is not None, "no record read back within 30s"
        assert (record.key(), record.value()) == (b"k1", b"hello kafka")
        assert dict(record.headers()) == {"ce_id": b"smoke-1"}
    finally:
        consumer.close()


@pytest.mark.redis
def test_redis_stream_returns_the_entry_it_was_given(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    stream = f"smoke-{uuid.uuid4().hex[:10]}"
    try:
        entry_id = client.xadd(stream, {"ce_id": "smoke-1", "body": b"hello redis"})
        [(read_id, fields)] = client.xrange(stream)
        assert read_id == entry_id
        assert fields == {b"ce_id": b"smoke-1", b"body": b"hello redis"}
    finally:
        client.delete(stream)
        client.close()
