"""One trace across the real brokers: a command sent over RabbitMQ, its handler publishing an
event over Kafka, the subscriber — with each span the child of the one before, the W3C context
carried as the CloudEvents extension of each binding; and the same on Redis alone."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.trace import SpanKind

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.testing import wait_until
from tests.spans import parent_of


class Ship(Command, name="it.tracing.ship", version=1):
    parcel: str


class Shipped(Event, name="it.tracing.shipped", version=1):
    parcel: str


def _one_trace(bus: Bus, spans, command_prefix: str, event_prefix: str):
    headers: dict[str, dict[str, str]] = {}
    shipped: list[str] = []

    @bus.handles(Ship)
    def ship(cmd, ctx):
        headers["command"] = dict(ctx.headers)
        ctx.publish(Shipped(parcel=cmd.parcel))

    @bus.subscribes(Shipped, group="tracking")
    def tracking(evt, ctx):
        headers["event"] = dict(ctx.headers)
        shipped.append(evt.parcel)

    queue, topic = bus.queue_of(Ship), bus.topic_of(Shipped)
    with bus:
        sent = bus.send(Ship(parcel="p-1"))
        wait_until(lambda: shipped == ["p-1"] and spans.named(f"process {topic}"), 60)
    send, handle = spans.named(f"send {queue}")[0], spans.named(f"process {queue}")[0]
    publish, subscribe = spans.named(f"publish {topic}")[0], spans.named(f"process {topic}")[0]
    chain = (send, handle, publish, subscribe)
    assert [s.kind for s in chain] == [
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    ]
    assert len({s.context.trace_id for s in chain}) == 1
    assert [parent_of(s) for s in chain] == [None, *(s.context.span_id for s in chain[:3])]
    assert handle.attributes["messaging.message.id"] == sent
    assert subscribe.attributes["messaging.consumer.group.name"] == "tracking"
    trace_hex = format(send.context.trace_id, "032x")
    assert headers["command"][f"{command_prefix}traceparent"].split("-")[1] == trace_hex
    assert headers["event"][f"{event_prefix}traceparent"].split("-")[1] == trace_hex
    return send, subscribe


@pytest.mark.amqp
@pytest.mark.kafka
def test_one_trace_from_a_rabbitmq_command_to_a_kafka_subscriber(amqp_url, kafka_url, spans):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": amqp_url, "events": kafka_url},
            channel_prefix=f"trace-{uuid.uuid4().hex[:8]}.",
        )
    )
    try:
        send, subscribe = _one_trace(bus, spans, "cloudEvents_", "ce_")
    finally:
        bus.close()
    assert send.attributes["messaging.system"] == "rabbitmq"
    assert subscribe.attributes["messaging.system"] == "kafka"


@pytest.mark.redis
def test_one_trace_on_redis_alone(redis_url, spans):
    bus = Bus(
        Settings.without_environment(
            backends={"commands": redis_url, "events": redis_url},
            channel_prefix=f"trace-{uuid.uuid4().hex[:8]}.",
        )
    )
    try:
        send, subscribe = _one_trace(bus, spans, "ce_", "ce_")
    finally:
        bus.close()
    assert {send.attributes["messaging.system"], subscribe.attributes["messaging.system"]} == {
        "redis"
    }
