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
