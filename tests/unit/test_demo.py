"""The demo tells its story and exits 0 on the embedded default."""

from typer.testing import CliRunner

from interchange.cli import app


def test_the_demo_runs_end_to_end_on_memory_and_says_what_happened(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sent 4 PlaceOrder commands; orders.csv archived" in out
    assert "line 4: rejected A-1003 (quantity: Input should be a valid integer" in out
    assert "dead letter after 3 attempts: ValueError: order A-1004 asks for 0 items" in out
    assert "billing invoices A-1001 for 49.98" in out
    assert "shipping packs 3 x TEA-SENCHA for A-1005" in out
    assert "analytics replayed 3 past events" in out
    assert "POST /commands/orders.place_order -> 202" in out
    assert "webhook to the legacy warehouse: OrderPlaced A-2001" in out
    assert "signature verified" in out
    assert "demo complete" in out


def test_the_demo_reads_a_config_file(tmp_path):
    config = tmp_path / "interchange.yaml"
    config.write_text("backends:\n  commands: memory://demo-a\n  events: memory://demo-b\n")
    result = CliRunner().invoke(app, ["demo", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "commands travel on memory://demo-a, events on memory://demo-b" in result.output
