"""The AsyncAPI document: its shape, and the official parser's verdict on the demo's."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from interchange.cli import app
from interchange.testing.brokers import unavailable

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"


def _demo_document(tmp_path) -> dict:
    out = tmp_path / "asyncapi.json"
    result = CliRunner().invoke(
        app, ["asyncapi", "-m", "interchange.demo.contracts", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_the_demo_document_has_a_channel_operations_and_messages_per_contract(tmp_path):
    doc = _demo_document(tmp_path)
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == {"orders.place_order", "orders.order_placed"}
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}
    placed = doc["components"]["messages"]["orders.order_placed.v1"]
    assert placed["payload"]["required"] == ["order_id", "sku", "quantity", "total_cents"]
    headers = placed["headers"]["properties"]
    assert headers["ce_type"] == {"type": "string", "const": "orders.order_placed"}
    assert headers["ce_dataversion"]["const"] == "1"


def test_the_official_asyncapi_parser_finds_no_error_in_the_demo_document(tmp_path):
    if shutil.which("node") is None or not (TOOLS / "node_modules" / "@asyncapi").exists():
        unavailable("@asyncapi/parser is not installed: make test installs it in tools/asyncapi")
    doc = tmp_path / "asyncapi.json"
    doc.write_text(json.dumps(_demo_document(tmp_path)))
    run = subprocess.run(
        ["node", str(TOOLS / "validate.mjs"), str(doc)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TOOLS,
    )
    diagnostics = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    errors = [d for d in diagnostics if d["severity"] == 0]
    assert errors == [], errors
    assert run.returncode == 0, run.stderr
