"""The contract gate a user's CI runs: export a lock, then check the code against it."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid

import pytest
from typer.testing import CliRunner

from interchange.cli import app

V1 = """
from enum import StrEnum
from interchange.contracts import Event

class Size(StrEnum):
    S = "S"
    M = "M"
    L = "L"

class Placed(Event, name="{name}", version=1):
    order_id: str
    quantity: int
    size: Size = Size.M
"""


@pytest.fixture
def gate(tmp_path, monkeypatch):
    """Write contract modules, run the CLI on them; every test gets its own contract name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COLUMNS", "300")
    name = f"gate.t{uuid.uuid4().hex[:8]}.placed"
    runner = CliRunner()

    def module(source: str) -> str:
        module_name = f"gate_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source.format(name=name)))
        return module_name

    def run(*args: str):
        return runner.invoke(app, [*args, "--lock", str(tmp_path / "lock.json")])

    first = module(V1)
    exported = run("contracts", "export", "-m", first, "--schemas", str(tmp_path / "schemas"))
    assert exported.exit_code == 0, exported.output
    yield name, first, module, run, tmp_path
    for key in [k for k in sys.modules if k.startswith("gate_")]:
        del sys.modules[key]


def _v2(fields: str, extra: str = "") -> str:
    return f"""
from interchange.contracts import Event
from {{first}} import Size
{extra}
class PlacedV2(Event, name="{{name}}", version=2):
{textwrap.indent(textwrap.dedent(fields), "    ")}
"""


def _check(gate_fixture, fields: str, extra: str = ""):
    name, first, module, run, _ = gate_fixture
    second = module(_v2(fields, extra).replace("{first}", first))
    return name, run("contracts", "check", "-m", first, "-m", second)


def test_export_writes_a_schema_per_version_and_the_lock(gate):
    name, _, _, _, folder = gate
    lock = json.loads((folder / "lock.json").read_text())
    assert lock["contracts"][name]["compatibility"] == "BACKWARD"
    assert (folder / "schemas" / f"{name}.v1.json").exists()


def test_an_added_optional_field_passes_backward(gate):
    _, result = _check(
        gate, "order_id: str\nquantity: int\nsize: Size = Size.M\nnote: str | None = None\n"
    )
    assert result.exit_code == 0, result.output
    assert "contracts compatible with the lock" in result.output


def test_a_removed_required_field_fails_naming_contract_version_and_field(gate):
    name, result = _check(gate, "order_id: str\nsize: Size = Size.M\n")
    assert result.exit_code == 1
    assert (
        f"{name} v2 is not BACKWARD-compatible with v1 at quantity: field 'quantity' removed"
        in result.output
    )


def test_a_type_change_fails(gate):
    name, result = _check(gate, "order_id: str\nquantity: str\nsize: Size = Size.M\n")
    assert result.exit_code == 1
    assert f"{name} v2" in result.output
    assert "at quantity: type changed from integer to string" in result.output


def test_a_new_required_field_without_default_fails(gate):
    _, result = _check(gate, "order_id: str\nquantity: int\nsize: Size = Size.M\ncurrency: str\n")
    assert result.exit_code == 1
    assert "at currency: required field 'currency' added without default" in result.output


def test_a_removed_enum_member_fails(gate):
    extra = "from enum import StrEnum\nclass Smaller(StrEnum):\n    S = 'S'\n    M = 'M'\n"
    _, result = _check(gate, "order_id: str\nquantity: int\nsize: Smaller = Smaller.M\n", extra)
    assert result.exit_code == 1
    assert "at size: enum value 'L' removed" in result.output


def test_a_locked_version_that_disappears_fails(gate):
    name, _, module, run, _ = gate
    empty = module("from interchange.contracts import Event\n")
    result = run("contracts", "check", "-m", empty)
    assert result.exit_code == 1
    assert f"{name} v1 is in the lock but no longer declared" in result.output
