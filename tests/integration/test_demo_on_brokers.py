"""The demo runs unchanged on real brokers: only the configuration differs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from interchange.cli import app


def _run_demo(tmp_path, commands: str, events: str, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    config = tmp_path / "interchange.toml"
    config.write_text(f'[backends]\ncommands = "{commands}"\nevents = "{events}"\n')
    result = CliRunner().invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "demo complete" in result.output
    assert (
        "dead letter after 3 attempts: ValueError: order A-1004 asks for 0 items" in result.output
    )
    assert "analytics replayed 3 past events" in result.output
    return result.output


@pytest.mark.redis
def test_the_demo_runs_with_every_backend_set_to_one_redis_url(tmp_path, redis_url, monkeypatch):
    _run_demo(tmp_path, redis_url, redis_url, monkeypatch)


@pytest.mark.amqp
@pytest.mark.kafka
def test_the_demo_runs_on_rabbitmq_and_kafka(tmp_path, amqp_url, kafka_url, monkeypatch):
    _run_demo(tmp_path, amqp_url, kafka_url, monkeypatch)


@pytest.mark.amqp
@pytest.mark.kafka
@pytest.mark.redis
def test_the_demo_runs_on_the_shipped_example_configuration(
    amqp_url, kafka_url, redis_url, monkeypatch
):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "brokers.toml"
    # the example names the brokers on their default local ports; point it at this run's,
    # the way a deployment overrides a file: with INTERCHANGE_* variables
    monkeypatch.setenv("INTERCHANGE_BACKENDS__COMMANDS", amqp_url)
    monkeypatch.setenv("INTERCHANGE_BACKENDS__EVENTS", kafka_url)
    monkeypatch.setenv("INTERCHANGE_BACKENDS__FALLBACK", redis_url)
    monkeypatch.setenv("INTERCHANGE_DEDUPE", redis_url)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["demo", "--config", str(example)])
    assert result.exit_code == 0, result.output
    assert "demo complete" in result.output
    assert "analytics replayed 3 past events" in result.output
