"""``interchange health`` asks each broker for real and says which is down."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from interchange.cli import app
from tests.net import closed_port


@pytest.mark.amqp
@pytest.mark.kafka
@pytest.mark.redis
def test_health_reports_every_broker_up(amqp_url, kafka_url, redis_url, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(
        app, ["health", "-u", amqp_url, "-u", kafka_url, "-u", redis_url, "--timeout", "10"]
    )
    assert result.exit_code == 0, result.output
    assert "RabbitMQ" in result.output
    assert "Kafka cluster" in result.output
    assert "Redis" in result.output
    assert result.output.count(" up ") == 3
    assert "guest:***@" in result.output, "passwords are never printed"


@pytest.mark.amqp
@pytest.mark.redis
def test_health_exits_non_zero_and_names_the_backend_that_is_down(amqp_url, redis_url, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    dead_kafka = f"kafka://127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(
        app, ["health", "-u", amqp_url, "-u", dead_kafka, "-u", redis_url, "--timeout", "2"]
    )
    assert result.exit_code == 1, result.output
    down_rows = [line for line in result.output.splitlines() if " down " in line]
    assert len(down_rows) == 1
    assert dead_kafka in down_rows[0]


@pytest.mark.redis
def test_health_shows_the_open_circuit_of_a_running_bus_in_another_process(
    redis_url, tmp_path, monkeypatch
):
    import os
    import socket
    import uuid

    from interchange import Bus, Settings
    from interchange.contracts import Command
    from interchange.testing import wait_until

    class Ping(Command, name="it.health.ping", version=1):
        n: int

    dead_rabbitmq = f"amqp://guest:guest@127.0.0.1:{closed_port()}//"
    backends = {
        "commands": dead_rabbitmq,
        "events": f"memory://{uuid.uuid4().hex}",
        "fallback": redis_url,
        "drain_interval": 0.1,
    }
    config = tmp_path / "interchange.toml"
    config.write_text(
        "[backends]\n" + "".join(f'{name} = "{value}"\n' for name, value in backends.items())
    )
    bus = Bus(
        Settings.without_environment(backends=backends, channel_prefix=f"h-{uuid.uuid4().hex[:8]}.")
    )
    me = f"{socket.gethostname()}:{os.getpid()}:{bus.drainer.process.rsplit(':', 1)[1]}"
    monkeypatch.setenv("COLUMNS", "300")
    try:
        with bus:
            bus.send(Ping(n=1))  # RabbitMQ refuses: spooled, circuit open
            assert bus.failover_status()["commands"]["circuit"] != "closed"

            def shown() -> list[str]:
                result = CliRunner().invoke(
                    app, ["health", "--config", str(config), "--timeout", "2"]
                )
                return [line for line in result.output.splitlines() if me in line]

            wait_until(lambda: any("commands" in row and "open" in row for row in shown()), 10)
            rows = shown()
        events_row = next(row for row in rows if "events" in row)
        assert "closed" in events_row
        assert " 1 " in next(row for row in rows if "commands" in row), rows  # spooled: 1
        # a stopped Bus withdraws its report
        assert shown() == []
    finally:
        bus.close()
        with __import__("redis").Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match="interchange:spool:*h-*it.health.ping"):
                client.delete(key)
