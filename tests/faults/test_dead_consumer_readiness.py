"""A consumer whose thread died is seen: /readyz answers 503 naming it, and the
``interchange_consumers_running`` gauge drops. The way to kill one is the same on every
backend: a handler that raises SystemExit (a library calling ``sys.exit()``), which no
``except Exception`` catches, so the consumer's thread ends."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.ops import serve_ops
from interchange.testing import wait_until
from tests.scrape import metric_sum


class Fatal(Command, name="faults.readiness.fatal", version=1):
    exit: bool


class Fataled(Event, name="faults.readiness.fataled", version=1):
    exit: bool


def _handler(handled: list[bool]) -> Any:
    def handle(message: Fatal | Fataled) -> None:
        handled.append(message.exit)
        if message.exit:
            raise SystemExit(3)

    return handle


@pytest.fixture(
    params=[
        pytest.param(("amqp_url", "commands"), marks=pytest.mark.amqp, id="rabbitmq"),
        pytest.param(("kafka_url", "events"), marks=pytest.mark.kafka, id="kafka"),
        pytest.param(("redis_url", "commands"), marks=pytest.mark.redis, id="redis-commands"),
        pytest.param(("redis_url", "events"), marks=pytest.mark.redis, id="redis-events"),
        pytest.param(("memory", "events"), id="memory"),
    ]
)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    fixture, side = request.param
    url = (
        f"memory://{uuid.uuid4().hex}" if fixture == "memory" else request.getfixturevalue(fixture)
    )
    return url, side


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_consumer_whose_thread_died_makes_readyz_503_and_the_gauge_drop(backend, caplog):
    url, side = backend
    other = f"memory://{uuid.uuid4().hex}"
    backends = {"commands": url, "events": other} if side == "commands" else {
        "commands": other, "events": url}  # fmt: skip
    bus = Bus(
        Settings.without_environment(
            backends=backends, channel_prefix=f"dead-{uuid.uuid4().hex[:8]}."
        )
    )
    handled: list[bool] = []
    if side == "commands":
        bus.handles(Fatal)(_handler(handled))
        message: Fatal | Fataled = Fatal(exit=False)
        fatal: Fatal | Fataled = Fatal(exit=True)
        deliver = bus.send
    else:
        bus.subscribes(Fataled, group="g")(_handler(handled))
        message, fatal = Fataled(exit=False), Fataled(exit=True)
        deliver = bus.publish  # type: ignore[assignment]
    ops = serve_ops(bus)
    try:
        bus.start()
        deliver(message)  # type: ignore[arg-type]
        wait_until(lambda: handled == [False], 30, message=lambda: f"{handled}")
        ready = httpx.get(f"{ops.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        gauge = metric_sum(httpx.get(f"{ops.url}/metrics").text, "interchange_consumers_running")
        assert gauge == 1

        deliver(fatal)  # type: ignore[arg-type]
        wait_until(
            lambda: httpx.get(f"{ops.url}/readyz", timeout=10).status_code == 503,
            30,
            message="/readyz still 200 with the consumer's thread dead",
        )
        assert handled == [False, True]
        body = httpx.get(f"{ops.url}/readyz", timeout=10).json()
        assert body["consumers"]["running"] == 0
        [stopped] = body["consumers"]["stopped"]
        assert ("faults.readiness.fatal" in stopped) or ("faults.readiness.fataled" in stopped)
        metrics = httpx.get(f"{ops.url}/metrics", timeout=10).text
        assert metric_sum(metrics, "interchange_consumers_running") == 0
        assert f"consumer {stopped} ended: SystemExit(3)" in caplog.text
    finally:
        ops.close()
        bus.close()
