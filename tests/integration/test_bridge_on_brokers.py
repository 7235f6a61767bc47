"""interchange bridge on the real RabbitMQ: the HTTP gateway from configuration, stopped
gracefully by SIGTERM; killed with SIGKILL mid-stream and restarted, it loses nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from interchange import Bus, Command, Settings
from interchange.testing import Recorder, wait_until

pytestmark = pytest.mark.amqp


class BridgeOrder(Command, name="bridge.order", version=1):
    order_id: str


CONTRACTS = """
from interchange import Command

class BridgeOrder(Command, name="bridge.order", version=1):
    order_id: str
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def setup(tmp_path: Path, amqp_url: str) -> tuple[Path, Settings, int]:
    prefix, port = f"bridge-{uuid.uuid4().hex[:8]}.", _free_port()
    (tmp_path / "bridgecontracts.py").write_text(CONTRACTS)
    (tmp_path / "bridge.toml").write_text(
        f'channel_prefix = "{prefix}"\ncontract_modules = ["bridgecontracts"]\n'
        f'[backends]\ncommands = "{amqp_url}"\nevents = "memory://bridge"\n'
        f'[connectors.http]\nexpose = ["bridge.order"]\nport = {port}\n'
        'api_keys = { shop = "k-shop" }\n'
    )
    settings = Settings.without_environment(
        backends={"commands": amqp_url, "events": "memory://bridge-test"}, channel_prefix=prefix
    )
    return tmp_path, settings, port


@contextmanager
def _bridge(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    with (folder / "bridge.log").open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "interchange", "bridge", "--config", "bridge.toml"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _answers(port) or process.poll() is not None, 30)
        assert process.poll() is None, (folder / "bridge.log").read_text()[-2000:]
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _post(port: int, order_id: str) -> int:
    try:
        return httpx.post(
            f"http://127.0.0.1:{port}/commands/bridge.order",
            json={"order_id": order_id},
            headers={"x-api-key": "k-shop", "idempotency-key": order_id},
            timeout=5,
        ).status_code
    except httpx.HTTPError:
        return 0  # connection refused or reset: the client retries


def test_the_bridge_serves_the_configured_gateway_and_stops_on_sigterm(setup):
    folder, settings, port = setup
    consumer, seen = Bus(settings), Recorder()
    consumer.handles(BridgeOrder)(seen)
    with consumer, _bridge(folder, port) as bridge:
        assert _post(port, "A-1") == 202
        assert seen.wait_for(1, 30) == [BridgeOrder(order_id="A-1")]
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(20) == 0
    consumer.close()


def test_a_bridge_killed_mid_stream_and_restarted_loses_nothing(setup):
    folder, settings, port = setup
    consumer, seen = Bus(settings), Recorder()
    consumer.handles(BridgeOrder)(seen)
    pending = [f"O-{n}" for n in range(300)]
    with consumer:
        with _bridge(folder, port) as first:
            while len(pending) > 200:  # the legacy client: retries until a 202
                if _post(port, pending[0]) == 202:
                    pending.pop(0)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            assert _post(port, pending[0]) == 0, "the bridge is down"
        with _bridge(folder, port) as second:
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                if _post(port, pending[0]) == 202:
                    pending.pop(0)
            assert pending == []
            wait_until(lambda: len(seen) >= 300, 60)
            time.sleep(0.3)  # a duplicate would show up; not a wait for a result
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    consumer.close()
    orders = [cmd.order_id for cmd in seen.contracts]
    assert sorted(orders) == sorted(f"O-{n}" for n in range(300)), "nothing lost, nothing twice"
