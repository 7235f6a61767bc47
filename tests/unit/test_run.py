"""interchange run: a service in the foreground, stopped gracefully by SIGTERM or SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from interchange.testing import wait_until

SERVICE = """
import time
from pathlib import Path

from interchange import Bus, Command

HERE = Path(__file__).parent


class Work(Command, name="svc.work", version=1):
    seconds: float


bus = Bus.from_config()


@bus.handles(Work)
def work(cmd):
    (HERE / "began").write_text("yes")
    time.sleep(cmd.seconds)
    (HERE / "done").write_text("yes")


# memory:// keeps what is sent before the consumers start
bus.send(Work(seconds=float((HERE / "seconds").read_text())))
"""


def _start(tmp_path: Path, seconds: float, *args: str) -> subprocess.Popen[bytes]:
    (tmp_path / "svc.py").write_text(textwrap.dedent(SERVICE))
    (tmp_path / "seconds").write_text(str(seconds))
    (tmp_path / "interchange.toml").write_text(
        '[backends]\ncommands = "memory://svc"\nevents = "memory://svc"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    with (tmp_path / "out.log").open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "interchange", "run", "svc:bus", *args],
            cwd=tmp_path,  # the service module is found from here, as python -m finds it
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _output(tmp_path: Path) -> str:
    return (tmp_path / "out.log").read_text()


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_handler_in_flight_finish_then_exits_0(tmp_path, stop_with):
    service = _start(tmp_path, 1.0)
    wait_until(lambda: (tmp_path / "began").exists() or service.poll() is not None, 20)
    assert service.poll() is None, _output(tmp_path)
    service.send_signal(stop_with)
    assert service.wait(20) == 0, _output(tmp_path)
    assert (tmp_path / "done").exists(), "the handler in flight was cut short"


def test_a_handler_that_outlives_the_grace_period_makes_the_exit_code_1(tmp_path):
    service = _start(tmp_path, 5.0, "--grace", "0.3")
    wait_until(lambda: (tmp_path / "began").exists() or service.poll() is not None, 20)
    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    assert service.wait(20) == 1
    assert time.monotonic() - started < 4.0
    assert not (tmp_path / "done").exists()


def test_a_second_signal_stops_at_once(tmp_path):
    service = _start(tmp_path, 30.0)
    wait_until(lambda: (tmp_path / "began").exists() or service.poll() is not None, 20)
    service.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # the first signal is being handled; not a wait for a result
    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    assert service.wait(10) == 1
    assert time.monotonic() - started < 5.0


def test_run_says_what_is_wrong_with_a_target_in_one_line(tmp_path):
    (tmp_path / "svc.py").write_text("bus = 42\n")
    for target, expected in (
        ("svc", "is not module:attribute"),
        ("svc:nothing", "has no attribute 'nothing'"),
        ("svc:bus", "svc:bus is int, not a Bus"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "interchange", "run", target],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr


def test_contract_modules_are_found_from_the_current_directory(tmp_path):
    (tmp_path / "mycontracts.py").write_text(
        "from interchange import Event\n\n"
        "class Seen(Event, name='cwd.seen', version=1):\n    at: str\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "contracts", "export", "-m", "mycontracts"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "schemas" / "cwd.seen.v1.json").exists()
