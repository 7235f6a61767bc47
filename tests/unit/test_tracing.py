"""OpenTelemetry: producer and consumer spans with parent links across send → handler →
ctx.publish → subscriber, trace context in the CloudEvents extension headers, nothing without
a tracer provider or with tracing off."""

from __future__ import annotations

import json
import subprocess
import sys

from opentelemetry.trace import SpanKind, StatusCode

from interchange.contracts import Command, Event
from interchange.testing import wait_until
from tests.spans import parent_of


class Charge(Command, name="unit.tracing.charge", version=1):
    amount: int


class Charged(Event, name="unit.tracing.charged", version=1):
    amount: int


class Quote(Command, name="unit.tracing.quote", version=1):
    item: str


class Price(Command, name="unit.tracing.price", version=1):
    cents: int


def test_one_trace_spans_send_handler_publish_and_subscriber_with_parent_links(make_bus, spans):
    bus = make_bus()
    seen_headers: list[dict[str, str]] = []
    charged: list[int] = []

    @bus.handles(Charge)
    def charge(cmd, ctx):
        seen_headers.append(dict(ctx.headers))
        ctx.publish(Charged(amount=cmd.amount))

    @bus.subscribes(Charged, group="ledger")
    def ledger(evt):
        charged.append(evt.amount)

    queue, topic = bus.queue_of(Charge), bus.topic_of(Charged)
    with bus:
        sent = bus.send(Charge(amount=5))
        wait_until(lambda: charged == [5] and len(spans.named(f"process {topic}")) == 1, 10)

    send, handle = spans.named(f"send {queue}")[0], spans.named(f"process {queue}")[0]
    publish, subscribe = spans.named(f"publish {topic}")[0], spans.named(f"process {topic}")[0]
    assert [s.kind for s in (send, handle, publish, subscribe)] == [
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    ]
    assert {s.context.trace_id for s in (send, handle, publish, subscribe)} == {
        send.context.trace_id
    }
    assert parent_of(send) is None
    assert parent_of(handle) == send.context.span_id
    assert parent_of(publish) == handle.context.span_id
    assert parent_of(subscribe) == publish.context.span_id
    assert dict(send.attributes) == {
        "messaging.system": "memory",
        "messaging.destination.name": queue,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.message.id": sent,
    }
    assert subscribe.attributes["messaging.consumer.group.name"] == "ledger"
    assert subscribe.attributes["messaging.operation.type"] == "process"
    assert handle.attributes["messaging.message.id"] == sent
    # the W3C context travels as the CloudEvents extension under the binding's prefix
    trace_hex = format(send.context.trace_id, "032x")
    assert seen_headers[0]["ce_traceparent"].split("-")[1] == trace_hex


def test_a_failing_handler_ends_each_attempt_in_an_error_span(make_bus, spans):
    bus = make_bus(retry={"max_attempts": 2, "initial_delay": 0.001})

    @bus.handles(Charge)
    def refuse(cmd):
        raise RuntimeError("card declined")

    with bus:
        bus.send(Charge(amount=1))
        name = f"process {bus.queue_of(Charge)}"
        wait_until(lambda: len(spans.named(name)) == 2, 10)
    attempts = sorted(
        spans.named(name), key=lambda s: s.attributes["messaging.message.delivery_attempt"]
    )
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR]
    assert [s.status.description for s in attempts] == [
        "RuntimeError, retried",
        "RuntimeError, dead_lettered",
    ]
    assert attempts[0].events[0].attributes["exception.message"] == "card declined"
    # both attempts are children of the one send
    assert {parent_of(s) for s in attempts} == {
        spans.named(f"send {bus.queue_of(Charge)}")[0].context.span_id
    }


def test_a_request_its_handling_and_the_reply_are_one_trace(make_bus, spans):
    bus = make_bus()

    @bus.handles(Quote)
    def quote(cmd):
        return Price(cents=250)

    with bus:
        assert bus.request(Quote(item="tea"), timeout=5) == Price(cents=250)
    queue = bus.queue_of(Quote)
    request, handle = spans.named(f"request {queue}")[0], spans.named(f"process {queue}")[0]
    (reply,) = [s for s in spans.finished() if s.name.startswith("reply ")]
    assert parent_of(handle) == request.context.span_id
    assert parent_of(reply) == handle.context.span_id


def test_a_batch_is_one_producer_span_that_every_handling_descends_from(make_bus, spans):
    bus = make_bus()
    handled: list[int] = []
    bus.handles(Charge)(lambda cmd: handled.append(cmd.amount))
    with bus:
        bus.send_many([Charge(amount=n) for n in range(5)])
        wait_until(lambda: len(spans.named(f"process {bus.queue_of(Charge)}")) == 5, 10)
    (batch,) = spans.named(f"send_many {bus.queue_of(Charge)}")
    assert batch.attributes["messaging.batch.message_count"] == 5
    assert {parent_of(s) for s in spans.named(f"process {bus.queue_of(Charge)}")} == {
        batch.context.span_id
    }


def test_with_tracing_off_no_span_and_no_trace_header(make_bus, spans):
    bus = make_bus(tracing=False)
    headers: list[dict[str, str]] = []
    bus.handles(Charge)(lambda cmd, ctx: headers.append(dict(ctx.headers)))
    with bus:
        bus.send(Charge(amount=1))
        wait_until(lambda: len(headers) == 1, 10)
    assert spans.finished() == []
    assert "ce_traceparent" not in headers[0]


_SCRIPT = """
import json, sys
{block}
from interchange import Bus
from interchange.contracts import Command
import interchange.tracing as tracing

class Ping(Command, name="unit.tracing.ping", version=1):
    n: int

seen = []
bus = Bus.from_config({{"backends": {{"commands": "memory://", "events": "memory://"}}}})
bus.handles(Ping)(lambda cmd, ctx: seen.append(dict(ctx.headers)))
with bus:
    bus.send(Ping(n=1))
    from interchange.testing import wait_until
    wait_until(lambda: seen, 10)
bus.close()
print(json.dumps({{"available": tracing.AVAILABLE, "headers": sorted(seen[0]),
                  "otel_imported": "opentelemetry.trace" in sys.modules}}))
"""


def _run(block: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(block=block)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_without_a_tracer_provider_messages_carry_no_trace_context():
    shown = _run("")
    assert shown["available"] is True
    assert not [h for h in shown["headers"] if "traceparent" in h]


def test_without_the_api_installed_nothing_of_it_is_imported():
    shown = _run("sys.modules['opentelemetry'] = None  # as if not installed")
    assert shown == {"available": False, "headers": shown["headers"], "otel_imported": False}
    assert not [h for h in shown["headers"] if "traceparent" in h]
