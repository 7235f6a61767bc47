"""Running ``interchange run`` against brokers made unreachable on purpose: a service folder,
its process, and toxiproxy proxies of a test's own (never the shared ones)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from interchange.contracts import Command, Event
from interchange.testing import wait_until
from interchange.testing.brokers import unavailable
from tests.faults.toxics import Proxy, _call

GRACE = 3.0
PROMPT = GRACE + 1.5
"""A stop must end the process within the grace period and about a second."""

SERVICE = """
from interchange import Bus, Command, Event


class Ping(Command, name="faults.stop.ping", version=1):
    n: int


class Pinged(Event, name="faults.stop.pinged", version=1):
    n: int


bus = Bus.from_config()


@bus.handles(Ping)
def ping(cmd):
    print("handled", cmd.n, flush=True)


@bus.subscribes(Pinged, group="stop")
def pinged(evt):
    print("handled", evt.n, flush=True)
"""


class Ping(Command, name="faults.stop.ping", version=1):
    n: int


class Pinged(Event, name="faults.stop.pinged", version=1):
    n: int


@contextmanager
def own_proxy(broker_url: str) -> Iterator[Proxy]:
    """A toxiproxy proxy of this test's own in front of the broker ``broker_url`` names."""
    api = os.environ.get("INTERCHANGE_TOXIPROXY_URL")
    if not api:
        unavailable("these fault tests need toxiproxy: compose/native/up starts it")
    parts = urlsplit(broker_url.split(",")[0])
    upstream = f"{parts.hostname or '127.0.0.1'}:{parts.port}"
    name = f"runtime-stop-{uuid.uuid4().hex[:10]}"
    created = _call(
        "POST",
        f"{api}/proxies",
        {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True},
    )
    try:
        yield Proxy(str(api), name, created["listen"])
    finally:
        _call("DELETE", f"{api}/proxies/{name}")


def connections_to(port: int) -> int:
    """Established client connections to ``port`` on this machine (/proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


def black_hole(proxy: Proxy) -> None:
    """Nothing passes either way and nothing is closed or refused, for every connection."""
    proxy.toxic("timeout", "downstream", timeout=0)
    proxy.toxic("timeout", "upstream", timeout=0)


class Service:
    """``interchange run svc:bus`` in a folder of its own, its output in run.log."""

    def __init__(self, folder: Path, backends: dict[str, str], *args: str) -> None:
        self.folder, self.prefix = folder, f"stop-{uuid.uuid4().hex[:8]}."
        (folder / "svc.py").write_text(textwrap.dedent(SERVICE))
        lines = [f'channel_prefix = "{self.prefix}"', "[backends]"]
        lines += [f'{side} = "{url}"' for side, url in backends.items()]
        (folder / "interchange.toml").write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
        command = [sys.executable, "-m", "interchange", "run", "svc:bus", "--grace", str(GRACE)]
        with (folder / "run.log").open("w") as out:
            self.process = subprocess.Popen(
                [*command, *args], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def log(self) -> str:
        return (self.folder / "run.log").read_text()

    def wait_for(self, text: str, within: float = 60) -> None:
        wait_until(lambda: text in self.log, within, message=lambda: f"no {text!r}: {self.log}")

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took), killed if it outlives the grace by far."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(GRACE + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def enable(proxy: Proxy, enabled: bool) -> None:
    """A disabled proxy refuses connections (and drops the open ones)."""
    _call("POST", f"{proxy.api}/proxies/{proxy.name}", {"enabled": enabled})
