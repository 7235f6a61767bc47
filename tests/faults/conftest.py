"""Fault tests break real brokers on purpose; they need brokers this run may restart."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from integrations.testing.brokers import unavailable

NATIVE = Path(__file__).resolve().parents[2] / "compose" / "native"


@pytest.fixture
def restart_broker() -> Callable[[str], None]:
    """Restart a broker started by compose/native/up (keeps its data)."""
    if os.environ.get("INTERCHANGE_NATIVE_BROKERS") != "1":
        unavailable("fault tests restart brokers: run them through compose/with-brokers (native)")

    def restart(name: str) -> None:
        subprocess.run([NATIVE / "restart", name], check=True, timeout=120, capture_output=True)

    return restart
