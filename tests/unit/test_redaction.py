"""Every URL Interchange prints or logs passes through one redaction: userinfo passwords and
query options whose name says password, secret, token or key are masked."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from interchange.adapters import InvalidURL, UnknownBackend, open_commands, open_events, redact
from interchange.cli import app
from tests.net import closed_port

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://svc:hunter2@broker:5672//", "amqp://svc:***@broker:5672//"),
        (
            "kafka://a:9092,b:9092?sasl.username=svc&sasl.password=hunter2&partitions=6",
            "kafka://a:9092,b:9092?sasl.username=svc&sasl.password=***&partitions=6",
        ),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        (
            "kafka://k:9092?ssl.key.password=hunter2&sasl.oauthbearer.client.secret=hunter2",
            "kafka://k:9092?ssl.key.password=***&sasl.oauthbearer.client.secret=***",
        ),
        ("x://h?api_token=hunter2&apikey=hunter2", "x://h?api_token=***&apikey=***"),
        ("amqp://guest@broker:5672//?prefetch=10", "amqp://guest@broker:5672//?prefetch=10"),
        ("memory://", "memory://"),
        (
            "amqp://svc:hunter2@a:5672//;amqp://svc:hunter2@b:5672//?prefetch=10",
            "amqp://svc:***@a:5672//;amqp://svc:***@b:5672//?prefetch=10",
        ),
    ],
)
def test_redact_masks_passwords_and_secret_options_and_keeps_the_rest(url, shown):
    assert redact(url) == shown


def test_health_never_prints_a_kafka_sasl_password_or_an_amqp_password(monkeypatch):
    monkeypatch.setattr("interchange.cli.console", Console(width=400))
    port = closed_port()
    kafka = (
        f"kafka://127.0.0.1:{port}?security.protocol=SASL_PLAINTEXT&sasl.mechanism=PLAIN"
        f"&sasl.username=svc&sasl.password={SECRET}"
    )
    amqp = f"amqp://svc:{SECRET}@127.0.0.1:{port}//"
    result = CliRunner().invoke(app, ["health", "-u", kafka, "-u", amqp, "--timeout", "1"])
    assert result.exit_code == 1, result.output
    assert "sasl.username=svc&sasl.password=***" in result.output
    assert f"amqp://svc:***@127.0.0.1:{port}//" in result.output
    assert SECRET not in result.output


def test_the_demo_prints_its_backends_redacted(tmp_path):
    config = tmp_path / "interchange.toml"
    config.write_text(
        f'[backends]\ncommands = "memory://svc:{SECRET}@demo-r"\nevents = "memory://demo-r2"\n'
    )
    result = CliRunner().invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "commands travel on memory://svc:***@demo-r" in result.output
    assert SECRET not in result.output


def test_errors_about_a_url_show_it_redacted():
    with pytest.raises(UnknownBackend) as unknown:
        open_commands(f"amqpp://svc:{SECRET}@broker//")
    with pytest.raises(InvalidURL) as invalid:
        open_events(f"kafka://127.0.0.1:9092?partitions=zero&sasl.password={SECRET}")
    for error in (unknown.value, invalid.value):
        assert SECRET not in str(error)
    assert "svc:***@broker" in str(unknown.value)


def test_the_endpoints_of_a_list_of_amqp_nodes_are_every_node():
    from interchange.adapters.urls import endpoints

    assert endpoints("amqp://u:p@a:5672//;amqp://u:p@b:5673//") == [("a", 5672), ("b", 5673)]
