"""A conformance case that cannot run here shows up as skipped, with its reason — and fails
where brokers are required — instead of vanishing from the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.net import closed_port

ROOT = Path(__file__).resolve().parents[2]


def _run_restart_case(required: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    env["INTERCHANGE_BACKENDS__COMMANDS"] = f"amqp://127.0.0.1:{closed_port()}//"
    if required:
        env["INTERCHANGE_REQUIRE_BROKERS"] = "1"
    case = "tests/conformance/test_commands.py::test_consumers_carry_on_after_a_broker_restart"
    case += "_and_lose_nothing_in_flight[amqp]"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", case],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_restart_case_whose_broker_cannot_be_restarted_is_skipped_with_the_reason():
    done = _run_restart_case(required=False)
    assert "1 skipped" in done.stdout, done.stdout
    assert "cannot restart the amqp broker here" in done.stdout


def test_where_brokers_are_required_the_same_case_fails():
    done = _run_restart_case(required=True)
    assert done.returncode != 0
    assert "cannot restart the amqp broker here" in done.stdout
    assert "1 error" in done.stdout or "1 failed" in done.stdout, done.stdout
