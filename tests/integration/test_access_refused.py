"""A broker that answers and refuses the credentials or the virtual host is a wrong setting:
AccessRefused (a ConfigurationError, never a TransportError a retry loop would catch), and
``interchange run`` says so in one line with exit 2 at once, --wait-for-brokers or not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from interchange import Bus, Command, Settings
from interchange.errors import AccessRefused, ConfigurationError, TransportError


def _with_userinfo(url: str, userinfo: str, path: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}", path=path or parts.path))


def _starting(url: str) -> Bus:
    class Work(Command, name=f"refused{uuid.uuid4().hex[:8]}.work", version=1):
        n: int

    bus = Bus(Settings.without_environment(backends={"commands": url}))
    bus.handles(Work)(lambda command, ctx: None)
    return bus


def _refusal(url: str) -> AccessRefused:
    bus = _starting(url)
    try:
        with pytest.raises(AccessRefused) as raised:
            bus.start()
    finally:
        bus.close()
    assert isinstance(raised.value, ConfigurationError)
    assert not isinstance(raised.value, TransportError)
    return raised.value


@pytest.mark.amqp
def test_a_wrong_rabbitmq_password_is_access_refused(amqp_url: str) -> None:
    error = _refusal(_with_userinfo(amqp_url, "guest:not-the-password"))
    assert "ACCESS_REFUSED" in str(error)
    assert "not-the-password" not in str(error)


@pytest.mark.amqp
def test_a_missing_rabbitmq_vhost_is_access_refused(amqp_url: str) -> None:
    user = urlsplit(amqp_url).netloc.rpartition("@")[0]
    vhost = f"missing-{uuid.uuid4().hex[:8]}"
    error = _refusal(_with_userinfo(amqp_url, user, path=f"/{vhost}"))
    assert "NOT_ALLOWED" in str(error)
    assert vhost in str(error)


@pytest.mark.redis
def test_a_redis_user_that_does_not_exist_is_access_refused(redis_url: str) -> None:
    # (a password alone is accepted by a Redis whose default user has none: nopass takes any)
    error = _refusal(_with_userinfo(redis_url, f"nobody{uuid.uuid4().hex[:6]}:secret-pw"))
    assert "secret-pw" not in str(error)


SERVICE = """\
from interchange import Bus, Command

class Work(Command, name="refused{sfx}.work", version=1):
    n: int

bus = Bus.from_config()

@bus.handles(Work)
def work(command, ctx):
    pass
"""


@pytest.mark.amqp
def test_run_exits_2_at_once_on_a_wrong_password_even_waiting_for_brokers(
    amqp_url: str, tmp_path: Path
) -> None:
    module = f"svc_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SERVICE.format(sfx=uuid.uuid4().hex[:8]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}
    env["INTERCHANGE_BACKENDS__COMMANDS"] = _with_userinfo(amqp_url, "guest:wrong-pw")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "run", f"{module}:bus", "--wait-for-brokers", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    took = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("interchange: error: RabbitMQ at ")
    assert "ACCESS_REFUSED" in line
    assert "did not answer" not in done.stderr + done.stdout
    assert "wrong-pw" not in done.stderr + done.stdout
    assert took < 6, f"a refusal was retried under --wait-for-brokers ({took:.1f}s)"
