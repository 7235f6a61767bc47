"""An event the Kafka cluster refuses (over its size limit) is the caller's PublishRejected,
never a raw KafkaException, never spooled as if the broker were down."""

from __future__ import annotations

import uuid

import pytest

from interchange import Bus, Event, PublishRejected, Settings

pytestmark = pytest.mark.kafka

TOO_LARGE = 1_200_000  # librdkafka's and the broker's message.max.bytes: about 1 MB


class Blob(Event, name="it.kafka.blob", version=1):
    n: int
    data: str


def _bus(kafka_url: str, **backends: str) -> Bus:
    return Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka_url, **backends},
            channel_prefix=f"refuse-{uuid.uuid4().hex[:8]}.",
        )
    )


def test_an_event_over_the_size_limit_is_publish_rejected_with_the_reason(kafka_url):
    bus = _bus(kafka_url)
    try:
        with pytest.raises(PublishRejected) as refused:
            bus.publish(Blob(n=1, data="x" * TOO_LARGE))
        assert "MSG_SIZE_TOO_LARGE" in str(refused.value)
        bus.publish(Blob(n=2, data="small"))  # the producer goes on
        assert [e.n for e in bus.replay(Blob)] == [2]  # type: ignore[attr-defined]
    finally:
        bus.close()


def test_publish_many_names_the_refused_event_and_every_later_one_as_failed(kafka_url):
    bus = _bus(kafka_url)
    events = [Blob(n=0, data="a"), Blob(n=1, data="x" * TOO_LARGE), Blob(n=2, data="c")]
    ids = [str(uuid.uuid4()) for _ in events]
    try:
        with pytest.raises(PublishRejected) as refused:
            bus.publish_many(events, ids=ids)
        assert "MSG_SIZE_TOO_LARGE" in str(refused.value)
        assert refused.value.failed == ids[1:], "the refused one and the ones never produced"
        assert [e.n for e in bus.replay(Blob)] == [0]  # type: ignore[attr-defined]
    finally:
        bus.close()


def test_with_a_fallback_a_refused_event_is_not_spooled(kafka_url, redis_url):
    bus = _bus(kafka_url, fallback=redis_url)
    try:
        with pytest.raises(PublishRejected):
            bus.publish(Blob(n=1, data="x" * TOO_LARGE))
        status = bus.failover_status()["events"]
        assert (status["spooled"], status["circuit"]) == (0, "closed")
        bus.publish(Blob(n=2, data="small"))
        assert [e.n for e in bus.replay(Blob)] == [2]  # type: ignore[attr-defined]
    finally:
        bus.close()
