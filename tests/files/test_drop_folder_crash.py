"""interchange bridge reading a drop folder into the real RabbitMQ, SIGKILLed mid-file and
restarted: every record arrives, and at most the one batch in flight arrives twice (with its
old ids, so consumers dedupe it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from interchange import Command, Settings
from interchange.adapters import ACK, open_commands
from interchange.testing import wait_until

pytestmark = pytest.mark.amqp

CONTRACTS = """
from interchange import Command

class Parcel(Command, name="files.crash.parcel", version=1):
    parcel: str
    grams: int
"""


class Parcel(Command, name="files.crash.parcel", version=1):
    parcel: str
    grams: int


def _bridge(folder: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    with (folder / "bridge.log").open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "interchange", "bridge", "--config", "bridge.toml"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _progress(progress: Path) -> int:
    try:
        return int(json.loads(progress.read_text())["next"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_a_bridge_killed_mid_file_resumes_after_the_last_confirmed_batch(tmp_path, amqp_url):
    prefix = f"drop-{uuid.uuid4().hex[:8]}."
    (tmp_path / "dropcontracts.py").write_text(CONTRACTS)
    drop = tmp_path / "drop"
    (tmp_path / "bridge.toml").write_text(
        f'channel_prefix = "{prefix}"\ncontract_modules = ["dropcontracts"]\n'
        f'[backends]\ncommands = "{amqp_url}"\nevents = "memory://drop"\n'
        f'[[connectors.drop_folders]]\nname = "scale"\npath = "{drop}"\n'
        'contract = "files.crash.parcel"\nstable_checks = 1\npoll_interval = 0.2\nbatch = 50\n'
    )
    drop.mkdir()
    rows = "".join(f"P{n},{n}\n" for n in range(3000))
    (tmp_path / "parcels.csv").write_text("parcel,grams\n" + rows)
    (tmp_path / "parcels.csv").rename(drop / "parcels.csv")  # dropped whole

    first = _bridge(tmp_path)
    progress = drop / "processing" / "parcels.csv.progress"
    try:
        wait_until(lambda: _progress(progress) > 500 or first.poll() is not None, 60)
        first.kill()  # SIGKILL mid-file
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    resumed_at = _progress(progress)
    assert 500 < resumed_at < 3000, (tmp_path / "bridge.log").read_text()[-2000:]
    second = _bridge(tmp_path)
    try:
        wait_until(lambda: (drop / "archive" / "parcels.csv").exists(), 60)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            second.kill()

    settings = Settings.without_environment(channel_prefix=prefix)
    queue = f"{settings.channel_prefix}files.crash.parcel"
    commands = open_commands(amqp_url)
    ids: list[str] = []
    lock = threading.Lock()

    def record(delivery):
        with lock:
            ids.append(delivery.message.id)
        return ACK

    commands.consume(queue, record)
    wait_until(lambda: len(set(ids)) == 3000, 60, message=lambda: f"{len(set(ids))} of 3000")
    commands.close()
    ordinals = sorted({int(i.rsplit("-", 1)[1]) for i in ids})
    assert ordinals == list(range(1, 3001)), "every record arrived"
    assert len(ids) - 3000 <= 50, "at most the batch in flight twice"
