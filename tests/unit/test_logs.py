"""--log-format json: one JSON object a line, with what a delivery's log line is about."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from interchange.cli import _log_to, console
from interchange.contracts import Command
from interchange.testing import wait_until


class Fragile(Command, name="unit.logs.fragile", version=1):
    n: int


@pytest.fixture
def json_logs():
    """What ``_log_to(..., "json")`` writes to stderr, written to a buffer instead."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("interchange").level)
    _log_to(console, level="INFO", log_format="json")
    out = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setStream(out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("interchange").setLevel(saved[2])


def test_a_failing_handler_logs_json_lines_naming_channel_message_and_attempt(make_bus, json_logs):
    bus = make_bus(retry={"max_attempts": 2, "initial_delay": 0.001})
    attempts = []

    @bus.handles(Fragile)
    def fragile(cmd):
        attempts.append(cmd.n)
        raise RuntimeError("legacy system said no")

    with bus:
        sent = bus.send(Fragile(n=7))
        wait_until(lambda: len(attempts) == 2, 10)
        bus.stop()  # waits for the delivery in hand: its last log line is written
    lines = [json.loads(raw) for raw in json_logs.getvalue().splitlines()]
    dead = [line for line in lines if "after 2 attempts" in line["message"]]
    assert len(dead) == 1, lines
    record = dead[0]
    assert record["level"] == "ERROR"
    assert record["logger"] == "interchange"
    assert record["channel"] == bus.queue_of(Fragile)
    assert record["contract"] == "unit.logs.fragile"
    assert record["attempt"] == 2
    assert record["message_id"] == sent
    assert "legacy system said no" in record["message"]
    retried = [line for line in lines if "retrying" in line["message"]]
    assert [line["attempt"] for line in retried] == [1]


def test_a_delivery_log_line_carries_the_trace_id_of_its_consumer_span(make_bus, json_logs, spans):
    bus = make_bus(retry={"max_attempts": 1, "initial_delay": 0.001})
    bus.handles(Fragile)(lambda cmd: (_ for _ in ()).throw(RuntimeError("no")))
    name = f"process {bus.queue_of(Fragile)}"
    with bus:
        bus.send(Fragile(n=1))
        wait_until(lambda: spans.named(name), 10)
        bus.stop()
    lines = [json.loads(raw) for raw in json_logs.getvalue().splitlines()]
    (dead,) = [line for line in lines if "after 1 attempts" in line["message"]]
    assert dead["trace_id"] == format(spans.named(name)[0].context.trace_id, "032x")
