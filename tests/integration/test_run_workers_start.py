"""interchange run --workers 2 whose workers cannot start: the supervisor stops and exits with
the documented code (1 the service's module raised, 2 a bad setting, 3 a broker refused)
instead of replacing them forever; a worker that dies after serving is still replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from interchange.testing import wait_until
from tests.net import closed_port

SERVICE = """
import os

from interchange import Bus, Command

if os.environ.get("SVC_RAISE"):
    raise RuntimeError("the service's own bug")


class Job(Command, name="workers.start.job", version=1):
    n: int


bus = Bus.from_config()


@bus.handles(Job)
def job(cmd):
    pass
"""

EXIT_WITHIN = 20.0


def _config(tmp_path: Path, commands: str, extra: str = "") -> None:
    (tmp_path / "svc.py").write_text(textwrap.dedent(SERVICE))
    (tmp_path / "interchange.toml").write_text(
        f'{extra}channel_prefix = "ws-{uuid.uuid4().hex[:8]}."\n'
        f'[backends]\ncommands = "{commands}"\nevents = "memory://ws"\n'
    )


def _supervise(tmp_path: Path, **env: str) -> tuple[int, float, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    started = time.monotonic()
    with (tmp_path / "run.log").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "interchange", "run", "svc:bus", "-w", "2"],
            cwd=tmp_path,
            env={**clean, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        code = process.wait(EXIT_WITHIN + 10)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    return code, time.monotonic() - started, (tmp_path / "run.log").read_text()


@pytest.mark.amqp
def test_a_module_that_raises_at_import_exits_1(tmp_path, amqp_url):
    _config(tmp_path, amqp_url)
    code, took, log = _supervise(tmp_path, SVC_RAISE="1")
    assert code == 1, log
    assert took < EXIT_WITHIN, log
    assert "the service's own bug" in log
    assert "replacing it" not in log


def test_a_bad_setting_exits_2(tmp_path):
    _config(tmp_path, "memory://ws", extra="retyr = {}\n")
    code, took, log = _supervise(tmp_path)
    assert code == 2, log
    assert took < EXIT_WITHIN, log
    assert "retyr" in log
    assert "replacing it" not in log


def test_a_broker_refusing_at_start_exits_3(tmp_path):
    _config(tmp_path, f"amqp://guest:guest@127.0.0.1:{closed_port()}//")
    code, took, log = _supervise(tmp_path)
    assert code == 3, log
    assert took < EXIT_WITHIN, log
    assert "did not answer" in log
    assert "replacing it" not in log


@pytest.mark.amqp
def test_a_worker_that_dies_after_serving_is_still_replaced(tmp_path, amqp_url):
    _config(tmp_path, amqp_url)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    log_path = tmp_path / "run.log"
    with log_path.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "interchange", "run", "svc:bus", "-w", "2"],
            cwd=tmp_path,
            env=clean,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: log_path.read_text().count("serving svc:bus") == 2, 60)
        first = int(log_path.read_text().split("serving svc:bus (pid ", 1)[1].split(")", 1)[0])
        os.kill(first, signal.SIGKILL)  # dies after serving (exit -9)
        wait_until(lambda: log_path.read_text().count("serving svc:bus") == 3, 60)
        assert process.poll() is None, "the supervisor still runs"
        assert "replacing it" in log_path.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0, log_path.read_text()
