"""interchange dlq on the real brokers: dead letters listed and shown with why; requeued onto
their source with ids kept and attempts reset, handled again; the rest purged — RabbitMQ and
Redis queues, Kafka and Redis event logs (where a requeue of the newer ones keeps the older
ones and is not repeated). And interchange tail following a topic and a dead-letter queue."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from interchange import Bus, Settings
from interchange.cli import app
from interchange.contracts import Command, Event
from interchange.dlq import dead_letters
from interchange.testing import wait_until


class Refund(Command, name="it.dlq.refund", version=1):
    n: int


class Refunded(Event, name="it.dlq.refunded", version=1):
    n: int


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@dataclass
class Service:
    bus: Bus
    arguments: list[str]
    calls: list[tuple[int, int]]
    fixed: list[bool]


def _service(tmp_path, backends: dict[str, str], contract) -> Service:
    prefix = f"dlq-{uuid.uuid4().hex[:8]}."
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'channel_prefix = "{prefix}"\n[backends]\n'
        + "".join(f'{name} = "{url}"\n' for name, url in backends.items())
    )
    bus = Bus(
        Settings.without_environment(
            backends=backends,
            channel_prefix=prefix,
            retry={"max_attempts": 1, "initial_delay": 0.01},
        )
    )
    calls: list[tuple[int, int]] = []
    fixed: list[bool] = []

    def handle(msg, ctx):
        if not fixed:
            raise RuntimeError(f"refunds closed for {msg.n}")
        calls.append((msg.n, ctx.attempt))

    if issubclass(contract, Event):
        bus.subscribes(contract, group="billing")(handle)
    else:
        bus.handles(contract)(handle)
    return Service(bus, ["--config", str(config), "--module", __name__], calls, fixed)


def _round_trip(service: Service, contract, send) -> None:
    bus, run = service.bus, CliRunner()
    name = contract.contract_name
    with bus:
        ids = [send(bus, contract(n=n)) for n in range(4)]
        wait_until(lambda: len(dead_letters(bus, contract)) == 4, 60)

        listed = run.invoke(app, ["dlq", "list", name, *service.arguments])
        assert listed.exit_code == 0, listed.output
        assert f"dead letters of {name} (4)" in listed.stdout
        shown = run.invoke(app, ["dlq", "show", name, *service.arguments, "--id", ids[0]])
        assert shown.exit_code == 0, shown.output
        [first] = _lines(shown.stdout)
        assert first["id"] == ids[0]
        assert first["reason"] == "RuntimeError: refunds closed for 0"
        assert first["error"] == "RuntimeError"
        assert first["attempts"] == 1
        assert first["data"] == {"n": 0}
        assert first["dead_lettered_at"] is not None
        if issubclass(contract, Event):
            assert first["group"] == "billing"

        service.fixed.append(True)
        # the newer two first: the older ones are kept where they are
        requeued = run.invoke(
            app, ["dlq", "requeue", name, *service.arguments, "--id", ids[1], "--id", ids[2]]
        )
        assert requeued.exit_code == 0, requeued.output
        assert "requeued 2 dead letter(s)" in requeued.stdout
        wait_until(lambda: sorted(service.calls) == [(1, 1), (2, 1)], 60)
        left = run.invoke(app, ["dlq", "show", name, *service.arguments])
        assert [line["id"] for line in _lines(left.stdout)] == [ids[0], ids[3]]

        purged = run.invoke(app, ["dlq", "purge", name, *service.arguments, "--limit", "1", "-y"])
        assert "purged 1 dead letter(s)" in purged.stdout, purged.output
        again = run.invoke(app, ["dlq", "requeue", name, *service.arguments])
        assert "requeued 1 dead letter(s)" in again.stdout, again.output
        wait_until(lambda: sorted(service.calls) == [(1, 1), (2, 1), (3, 1)], 60)
        empty = run.invoke(app, ["dlq", "show", name, *service.arguments])
        assert _lines(empty.stdout) == []
    bus.close()
    assert sorted(service.calls) == [(1, 1), (2, 1), (3, 1)]  # the purged one never came back


def _send(bus, command):
    return bus.send(command)


def _publish(bus, event):
    # one key, so one partition: a sweep goes through a partitioned log partition by partition
    return bus.publish(event, key="refunds")


@pytest.mark.amqp
def test_dlq_round_trip_on_rabbitmq(amqp_url, tmp_path):
    backends = {"commands": amqp_url, "events": f"memory://{uuid.uuid4().hex}"}
    _round_trip(_service(tmp_path, backends, Refund), Refund, _send)


@pytest.mark.redis
def test_dlq_round_trip_on_a_redis_queue(redis_url, tmp_path):
    backends = {"commands": redis_url, "events": f"memory://{uuid.uuid4().hex}"}
    _round_trip(_service(tmp_path, backends, Refund), Refund, _send)


@pytest.mark.kafka
def test_dlq_round_trip_on_kafka(kafka_url, tmp_path):
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": kafka_url}
    _round_trip(_service(tmp_path, backends, Refunded), Refunded, _publish)


@pytest.mark.redis
def test_dlq_round_trip_on_a_redis_log(redis_url, tmp_path):
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": redis_url}
    _round_trip(_service(tmp_path, backends, Refunded), Refunded, _publish)


def _tail_while(arguments: list[str], keep_sending) -> list[dict]:
    """Run ``interchange tail`` until it printed what it was asked for, sending meanwhile."""
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(CliRunner().invoke(app, ["tail", *arguments])), daemon=True
    )
    thread.start()
    n = 0
    while thread.is_alive() and n < 2_000:
        keep_sending(n)
        n += 1
        thread.join(0.05)
    thread.join(30)
    assert result, "tail did not finish"
    assert result[0].exit_code == 0, result[0].output
    return _lines(result[0].stdout)


@pytest.mark.kafka
def test_tail_follows_a_topic_without_joining_a_group(kafka_url, tmp_path):
    backends = {"commands": f"memory://{uuid.uuid4().hex}", "events": kafka_url}
    service = _service(tmp_path, backends, Refunded)  # a handler registered, never started
    bus = service.bus
    lines = _tail_while(
        ["it.dlq.refunded", *service.arguments, "--count", "3", "--interval", "0.1"],
        lambda n: bus.publish(Refunded(n=n), key="one-key"),
    )
    bus.close()
    numbers = [line["data"]["n"] for line in lines]
    assert len(numbers) == 3
    assert numbers == list(range(numbers[0], numbers[0] + 3))  # consecutive, in order
    assert {line["contract"] for line in lines} == {"it.dlq.refunded v1"}


@pytest.mark.redis
def test_tail_follows_a_queues_dead_letters(redis_url, tmp_path):
    backends = {"commands": redis_url, "events": f"memory://{uuid.uuid4().hex}"}
    service = _service(tmp_path, backends, Refund)
    bus = service.bus.start()
    lines = _tail_while(
        ["it.dlq.refund", *service.arguments, "--count", "2", "--interval", "0.1"],
        lambda n: bus.send(Refund(n=n)),
    )
    bus.close()
    assert len(lines) == 2
    assert all(line["reason"].startswith("RuntimeError: refunds closed for") for line in lines)
