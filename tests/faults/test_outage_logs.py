"""A 15-second Kafka outage under a running service logs a handful of lines, not hundreds:
librdkafka's own lines go through Python logging, one of each kind per 30 s."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from interchange import Bus, Settings
from interchange.contracts import Event
from interchange.testing import wait_until


class Tick(Event, name="fault.logs.tick", version=1):
    n: int


@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.timeout(180)
def test_a_15_second_kafka_outage_logs_fewer_than_20_lines(
    kafka_url, redis_url, broker_ctl, caplog
):
    prefix = f"logs-{uuid.uuid4().hex[:8]}."
    commands = f"memory://{uuid.uuid4().hex}"
    bus = Bus(
        Settings.without_environment(
            backends={"commands": commands, "events": kafka_url, "fallback": redis_url},
            channel_prefix=prefix,
        )
    )
    seen: list[int] = []
    bus.subscribes(Tick, group="logs")(lambda evt: seen.append(evt.n))
    bus.publish(Tick(n=-1))
    sent = 0
    try:
        with bus:
            wait_until(lambda: -1 in seen, 60)
            caplog.clear()
            with caplog.at_level(logging.DEBUG, logger="interchange"):
                broker_ctl("kafka", "stop")
                outage_ends = time.monotonic() + 15
                while time.monotonic() < outage_ends:  # a service publishing all along
                    bus.publish(Tick(n=sent))
                    sent += 1
                    threading.Event().wait(0.1)  # the publishing pace, not a wait for a result
                lines = [r for r in caplog.records if r.levelno >= logging.INFO]
            broker_ctl("kafka", "start")
            wait_until(lambda: set(range(sent)) <= set(seen), 120)
    finally:
        bus.close()
    shown = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()[:160]}" for r in lines)
    assert sent > 100
    assert len(lines) < 20, f"{len(lines)} lines during the outage:\n{shown}"
