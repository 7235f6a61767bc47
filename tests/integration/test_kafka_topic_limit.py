"""A topic whose own max.message.bytes is below the client's: the broker refuses whole
produce batches for one record over it. ``PublishRejected.failed`` must name exactly the
records that are not in the log — never report one stored that is not."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from interchange import PublishRejected
from interchange.adapters.kafka.transport import KafkaEventTransport
from interchange.adapters.kafka.wire import servers_of, to_delivery
from interchange.adapters.message import TransportMessage

pytestmark = pytest.mark.kafka

TOPIC_LIMIT = 100_000  # the topic's max.message.bytes; the client's stays about 1 MB


def _small_limit_topic(kafka_url: str) -> str:
    topic = f"limit-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": servers_of(kafka_url)})
    new = NewTopic(topic, 1, 1, config={"max.message.bytes": str(TOPIC_LIMIT)})
    admin.create_topics([new])[topic].result(timeout=30)
    return topic


def _ids_in_log(kafka_url: str, topic: str) -> list[str]:
    """Every record of the topic's one partition, read with a raw consumer."""
    consumer = Consumer(
        {"bootstrap.servers": servers_of(kafka_url), "group.id": "unused", "log_level": 0}
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        ids: list[str] = []
        while len(ids) < high:
            record = consumer.poll(10)
            assert record is not None, "the log could not be read in time"
            assert record.error() is None, record.error()
            ids.append(to_delivery(record).message.id)
        return ids
    finally:
        consumer.close()


def _message(n: int, size: int = 10) -> TransportMessage:
    return TransportMessage(f"{n}-{uuid.uuid4().hex}", b"x" * size, key="m")


def test_publish_many_names_as_failed_exactly_the_records_missing_from_the_log(kafka_url):
    topic = _small_limit_topic(kafka_url)
    transport = KafkaEventTransport(kafka_url)
    try:
        control = _message(0)
        transport.publish(topic, control)
        batch = [_message(n, 200_000 if n == 5 else 10) for n in range(1, 11)]
        with pytest.raises(PublishRejected) as refused:
            transport.publish_many(topic, batch)
        stored = _ids_in_log(kafka_url, topic)
        assert stored[0] == control.id
        missing = [m.id for m in batch if m.id not in stored]
        assert batch[4].id in missing
        assert refused.value.failed == missing, "failed must be exactly what is not stored"
        assert "?" not in str(refused.value)
        after = _message(11)
        transport.publish(topic, after)  # the producer goes on
        assert _ids_in_log(kafka_url, topic)[-1] == after.id
    finally:
        transport.close()


def test_a_single_refused_publish_names_its_record(kafka_url):
    topic = _small_limit_topic(kafka_url)
    transport = KafkaEventTransport(kafka_url)
    try:
        big = _message(1, 200_000)
        with pytest.raises(PublishRejected) as refused:
            transport.publish(topic, big)
        assert refused.value.failed == [big.id]
        assert big.id in str(refused.value)
        assert _ids_in_log(kafka_url, topic) == []
    finally:
        transport.close()
