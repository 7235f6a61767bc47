"""What a running Bus counts (bus.metrics()) and what its ops port answers, on the memory
backend: outcome by outcome, and as Prometheus text a scraper parses."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from interchange import Reject
from interchange.contracts import Command, Event
from interchange.ops import serve_ops
from interchange.testing import wait_until


class Charge(Command, name="unit.ops.charge", version=1):
    n: int


class Charged(Event, name="unit.ops.charged", version=1):
    n: int


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_each_outcome_per_channel_and_group(make_bus):
    bus = make_bus(retry={"max_attempts": 2, "initial_delay": 0.001})
    handled = []

    @bus.handles(Charge)
    def charge(cmd, ctx):
        if cmd.n == 3:
            raise RuntimeError("card declined")  # retried once, then dead-lettered
        if cmd.n == 4:
            raise Reject("not ours")  # dead-lettered at once
        handled.append(cmd.n)

    bus.subscribes(Charged, group="audit")(lambda evt: None)
    queue, topic = bus.queue_of(Charge), bus.topic_of(Charged)
    with bus:
        bus.send_many([Charge(n=n) for n in range(3)])
        bus.send(Charge(n=3))
        bus.send(Charge(n=4))
        bus.publish_many([Charged(n=n) for n in range(5)])
        wait_until(
            lambda: (
                bus.metrics().get(f"{queue}|", {}).get("dead_lettered") == 2
                and bus.metrics().get(f"{topic}|audit", {}).get("handled") == 5
            ),
            10,
            message=lambda: str(bus.metrics()),
        )
    metrics = bus.metrics()
    sent, consumed = metrics[f"{queue}|"], metrics[f"{topic}|audit"]
    assert sent["sent"] == 5
    assert sent["handled"] == 3
    assert sent["retried"] == 1  # n=3's first attempt
    assert sent["dead_lettered"] == 2  # n=3 after its last attempt, n=4 rejected
    assert sent["failed"] == 3  # every handler exception: 2 for n=3, 1 for n=4
    assert sent["handler_seconds"]["count"] == 6
    assert sent["publish_seconds"]["count"] == 3  # one send_many, two sends
    assert consumed == {
        "handled": 5,
        "handler_seconds": consumed["handler_seconds"],
    }
    assert metrics[f"{topic}|"]["published"] == 5


def test_the_ops_port_answers_health_readiness_and_prometheus_metrics(make_bus):
    bus = make_bus()
    bus.handles(Charge)(lambda cmd: None)
    ops = serve_ops(bus)
    client = httpx.Client(base_url=ops.url, timeout=10)
    try:
        assert client.get("/healthz").status_code == 200
        not_started = client.get("/readyz")
        assert not_started.status_code == 503, "consumers not started: not ready"
        assert not_started.json()["started"] is False
        with bus:
            bus.send_many([Charge(n=n) for n in range(7)])
            queue = bus.queue_of(Charge)
            wait_until(lambda: bus.metrics().get(f"{queue}|", {}).get("handled") == 7, 10)
            ready = client.get("/readyz")
            scraped = client.get("/metrics")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["ready"] is True
        assert body["consumers"] == {"running": 1, "stopped": []}
        assert set(body["backends"]) == {"commands", "events"}
        assert all(backend["up"] for backend in body["backends"].values())
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        samples = _samples(scraped.text)
        labels = (("channel", queue), ("group", ""))
        assert samples[("interchange_sent_messages_total", labels)] == 7
        assert samples[("interchange_handled_messages_total", labels)] == 7
        assert samples[("interchange_handler_duration_seconds_count", labels)] == 7
        assert (
            samples[("interchange_handler_duration_seconds_bucket", (*labels, ("le", "+Inf")))] == 7
        )
        assert samples[("interchange_consumers_running", ())] == 1
        assert client.get("/nowhere").status_code == 404
    finally:
        client.close()
        ops.close()
        bus.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{ops.url}/healthz", timeout=2)  # closed


def test_readiness_names_a_consumer_that_died(make_bus):
    bus = make_bus()
    bus.handles(Charge)(lambda cmd: None)
    ops = serve_ops(bus)
    try:
        with bus:
            for subscription in bus.workers._running:
                subscription.stop()
                subscription.close(5)
            answer = httpx.get(f"{ops.url}/readyz", timeout=10)
    finally:
        ops.close()
        bus.close()
    assert answer.status_code == 503
    assert answer.json()["consumers"]["running"] == 0
    assert len(answer.json()["consumers"]["stopped"]) == 1
