"""interchange run --workers 2 on the real RabbitMQ: SIGTERM mid-stream stops gracefully with
nothing lost and nothing handled twice; a worker killed with SIGKILL is replaced and the stream
completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from interchange import Bus, Command, Settings
from interchange.testing import wait_until

pytestmark = pytest.mark.amqp

COUNT = 5_000
GRACE = 10.0

SERVICE = """
import os
import time
from pathlib import Path

from interchange import Bus, Command

HANDLED = Path(__file__).with_name("handled.log")


class Job(Command, name="run.job", version=1):
    n: int


bus = Bus.from_config()


@bus.handles(Job)
def job(cmd):
    time.sleep(0.001)
    with HANDLED.open("a") as log:  # one short appended line: atomic across processes
        log.write(f"{cmd.n} {os.getpid()}\\n")
"""


class Job(Command, name="run.job", version=1):
    n: int


@pytest.fixture
def service(tmp_path: Path, amqp_url: str) -> Path:
    (tmp_path / "svc.py").write_text(textwrap.dedent(SERVICE))
    (tmp_path / "interchange.toml").write_text(
        f'channel_prefix = "run-{uuid.uuid4().hex[:8]}."\n'
        f'[backends]\ncommands = "{amqp_url}"\nevents = "memory://run"\n'
        "[retry]\nmax_attempts = 3\ninitial_delay = 0.05\n"
    )
    return tmp_path


def _supervise(service: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    with (service / "run.log").open("w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "interchange",
                "run",
                "svc:bus",
                "-w",
                "2",
                "--grace",
                str(GRACE),
                *extra,
            ],
            cwd=service,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _handled(service: Path) -> list[tuple[int, int]]:
    path = service / "handled.log"
    if not path.exists():
        return []
    # a line still being written may be read half: only whole lines count
    lines = path.read_text().split("\n")[:-1]
    return [(int(n), int(pid)) for n, pid in (line.split() for line in lines)]


def _workers_of(supervisor: subprocess.Popen[bytes]) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == supervisor.pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _send_all(service: Path) -> None:
    from interchange.config import load_settings

    producer = Bus(
        Settings.without_environment(**load_settings(service / "interchange.toml").model_dump())
    )
    try:
        for start in range(0, COUNT, 500):
            producer.send_many([Job(n=n) for n in range(start, start + 500)])
    finally:
        producer.close()


@contextmanager
def _supervised(service: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """A supervisor of two workers, killed at the end if a failed test left it running."""
    supervisor = _supervise(service, *extra)
    try:
        yield supervisor
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def _all_handled(service: Path) -> bool:
    return len({n for n, _ in _handled(service)}) == COUNT


def test_sigterm_mid_stream_stops_two_workers_gracefully_and_loses_nothing(service):
    with _supervised(service) as supervisor:
        wait_until(lambda: len(_workers_of(supervisor)) == 2, 30)
        _send_all(service)
        wait_until(lambda: len(_handled(service)) >= 1_000, 60)
        signalled = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(GRACE + 20) == 0, (service / "run.log").read_text()[-2000:]
        assert time.monotonic() - signalled < GRACE, "the workers stopped within the grace"
    assert len(_handled(service)) < COUNT, "the stream must still be running at SIGTERM"
    # what the stopped workers had not taken is still queued: a new run finishes it
    with _supervised(service) as again:
        wait_until(lambda: _all_handled(service), 120)
        again.send_signal(signal.SIGTERM)
        assert again.wait(GRACE + 20) == 0
    counts = Counter(n for n, _ in _handled(service))
    assert set(counts) == set(range(COUNT)), "nothing lost"
    assert [n for n, times in counts.items() if times > 1] == [], "nothing handled twice"


def test_a_worker_killed_mid_stream_is_replaced_and_the_stream_completes(service):
    with _supervised(service) as supervisor:
        wait_until(lambda: len(_workers_of(supervisor)) == 2, 30)
        first = _workers_of(supervisor)
        _send_all(service)
        wait_until(lambda: len(_handled(service)) >= 1_000, 60)
        os.kill(min(first), signal.SIGKILL)
        wait_until(lambda: len(_workers_of(supervisor) - first) == 1, 30)
        [replacement] = _workers_of(supervisor) - first
        wait_until(lambda: _all_handled(service), 120)
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(GRACE + 20) == 0
    handled = _handled(service)
    assert {n for n, _ in handled} == set(range(COUNT)), "the stream completed"
    assert replacement in {pid for _, pid in handled}, "the replacement worker took work"
    # at least once: what the killed worker had handled but not yet acknowledged comes again —
    # at most ack_every (25) handled messages and the one in hand
    assert len(handled) - COUNT <= 25 + 1


def test_the_supervisors_ops_port_adds_up_what_each_workers_own_counted(service):
    import socket

    import httpx

    from tests.scrape import metric_sum

    def free_run(count: int) -> int:
        """A port P with P + 1 ... P + count - 1 free too (bound once, then released)."""
        while True:
            sockets = [socket.socket() for _ in range(count)]
            try:
                sockets[0].bind(("127.0.0.1", 0))
                port = int(sockets[0].getsockname()[1])
                for offset, other in enumerate(sockets[1:], start=1):
                    other.bind(("127.0.0.1", port + offset))
                return port
            except OSError:
                continue
            finally:
                for each in sockets:
                    each.close()

    base = free_run(3)  # the supervisor's, then worker 0's and worker 1's

    def scrape(port: int, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return metric_sum(text, name)

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{base}/readyz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    with _supervised(service, "--ops-port", str(base)) as supervisor:
        wait_until(ready, 30, message=lambda: (service / "run.log").read_text()[-2000:])
        readiness = httpx.get(f"http://127.0.0.1:{base}/readyz", timeout=10).json()
        _send_all(service)
        wait_until(lambda: _all_handled(service), 120)
        counts = [
            scrape(port, "interchange_handled_messages_total") for port in (base + 1, base + 2)
        ]
        total = scrape(base, "interchange_handled_messages_total")
        workers_up = scrape(base, "interchange_workers_up")
        running = scrape(base, "interchange_consumers_running")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(GRACE + 20) == 0
    assert [w["url"] for w in readiness["workers"]] == [
        f"http://127.0.0.1:{base + 1}",
        f"http://127.0.0.1:{base + 2}",
    ]
    assert all(w["ready"] for w in readiness["workers"])
    assert total == sum(counts) == len(_handled(service)), counts
    assert all(count > 0 for count in counts), f"both workers took work: {counts}"
    assert workers_up == 2
    assert running == 2  # one consumer thread each, summed
