"""interchange run --grace on the real brokers: an idle service stopped with a grace under a
second exits 0 (no handler was running; its consumers closing their connections is not one),
a handler that does outlive the grace still exits 1, and a negative grace is a usage error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from interchange import Bus, Command, Settings
from interchange.config import load_settings
from interchange.testing import wait_until

SERVICE = """
import time

from interchange import Bus, Command, Event


class Nap(Command, name="grace.nap", version=1):
    seconds: float


class Noted(Event, name="grace.noted", version=1):
    n: int


bus = Bus.from_config()


@bus.handles(Nap)
def nap(cmd):
    print("handler sleeping", flush=True)
    time.sleep(cmd.seconds)


@bus.subscribes(Noted, group="grace")
def noted(evt):
    pass
"""


class Nap(Command, name="grace.nap", version=1):
    seconds: float


@pytest.fixture
def service(tmp_path: Path, amqp_url: str, kafka_url: str) -> Path:
    (tmp_path / "svc.py").write_text(textwrap.dedent(SERVICE))
    (tmp_path / "interchange.toml").write_text(
        f'channel_prefix = "grace-{uuid.uuid4().hex[:8]}."\n'
        f'[backends]\ncommands = "{amqp_url}"\nevents = "{kafka_url}"\n'
    )
    return tmp_path


def _run(service: Path, grace: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    with (service / "run.log").open("w") as out:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "interchange", "run", "svc:bus", "--grace", grace],
            cwd=service,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _log(service: Path) -> str:
    return (service / "run.log").read_text()


def _stopped(service: Path, process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.amqp
@pytest.mark.kafka
@pytest.mark.parametrize("grace", ["0", "0.2"])
def test_an_idle_service_stopped_with_a_short_grace_exits_0(service, grace):
    process = _run(service, grace)
    try:
        wait_until(lambda: "serving" in _log(service), 60, message="the service serving")
    finally:
        code = _stopped(service, process)
    log = _log(service)
    assert "outlived" not in log
    assert code == 0, log
    assert f"(up to {grace}s)" in log, "the grace is printed as given"


@pytest.mark.amqp
@pytest.mark.kafka
def test_a_handler_that_outlives_a_short_grace_still_exits_1(service):
    process = _run(service, "0.2")
    try:
        wait_until(lambda: "serving" in _log(service), 60, message="the service serving")
        sender = Bus(
            Settings.without_environment(**load_settings(service / "interchange.toml").model_dump())
        )
        try:
            sender.send(Nap(seconds=3))
        finally:
            sender.close()
        wait_until(lambda: "handler sleeping" in _log(service), 30, message="the handler")
    finally:
        code = _stopped(service, process)
    assert code == 1, _log(service)
    assert "a handler outlived the 0.2s grace period" in _log(service)


def test_a_negative_grace_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "run", "svc:bus", "--grace", "-5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--grace" in done.stderr
