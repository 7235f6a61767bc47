"""The command line answers a user's mistake with one clear line and exit code 2."""

from __future__ import annotations

import subprocess
import sys


def _interchange(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interchange", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_a_missing_config_file_is_one_line_and_exit_2(tmp_path):
    done = _interchange("health", "-c", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"interchange: error: no such file: {tmp_path}/missing.toml"
    assert "Traceback" not in done.stdout + done.stderr


def test_an_invalid_configuration_names_every_problem_on_one_line(tmp_path):
    config = tmp_path / "interchange.toml"
    config.write_text('[backends]\ncommand = "memory://"\n\n[retry]\nmax_attempts = 0\n')
    done = _interchange("demo", "-c", str(config))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("interchange: error: invalid configuration: ")
    assert "backends.command: Extra inputs are not permitted" in line
    assert "retry.max_attempts: Input should be greater than 0" in line


def test_a_bad_backend_url_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "interchange.toml"
    config.write_text('[backends]\ncommands = "amqp://svc:hunter2@127.0.0.1:1//?prefetc=1"\n')
    done = _interchange("demo", "-c", str(config))
    assert done.returncode == 2
    assert "unknown amqp:// option 'prefetc' (did you mean 'prefetch'?)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "hunter2" not in done.stderr + done.stdout


def test_version_is_an_option_too():
    done = _interchange("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("interchange ")
    assert done.stdout.split()[1][0].isdigit()


def test_a_bug_in_the_services_own_module_shows_its_traceback(tmp_path):
    (tmp_path / "broken_service.py").write_text(
        "from interchange import Bus\n\nLIMIT = int('x')\nbus = Bus()\n"
    )
    done = _interchange("run", "broken_service:bus", cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f'File "{tmp_path}/broken_service.py", line 3, in <module>' in done.stderr
    assert "LIMIT = int('x')" in done.stderr
    assert "ValueError: invalid literal for int() with base 10: 'x'" in done.stderr
    # starts at the user's own frame: none of ours, none of the import machinery's
    assert "interchange/runtime.py" not in done.stderr
    assert "importlib" not in done.stderr
    assert lines[-1].startswith("interchange: error: importing broken_service raised ValueError")


def test_a_service_module_that_is_not_there_stays_one_line(tmp_path):
    done = _interchange("run", "no_such_service:bus", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "interchange: error: No module named 'no_such_service'"


def _with_env(**variables: str) -> dict[str, str]:
    import os

    return {**os.environ, **variables}


def test_a_connector_secret_in_the_environment_does_not_break_commands_that_use_no_connector(
    tmp_path,
):
    config = tmp_path / "interchange.toml"
    config.write_text('[backends]\ncommands = "memory://"\nevents = "memory://"\n')
    env = _with_env(INTERCHANGE_CONNECTORS__HTTP__API_KEYS='{"legacy-shop": "k-123"}')
    health = subprocess.run(
        [sys.executable, "-m", "interchange", "health", "-c", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert health.returncode == 0, health.stderr
    assert "Field required" not in health.stdout + health.stderr
    # the command that runs the connector still says what its section lacks, on one line
    bridge = subprocess.run(
        [sys.executable, "-m", "interchange", "bridge", "-c", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert bridge.returncode == 2
    assert bridge.stderr.strip() == (
        "interchange: error: invalid configuration: connectors.http.expose: Field required"
    )
    assert "k-123" not in bridge.stdout + bridge.stderr


def test_a_wrong_connector_value_from_the_environment_still_fails_every_command(tmp_path):
    config = tmp_path / "interchange.toml"
    config.write_text('[connectors.http]\nexpose = ["orders.place_order"]\n')
    env = _with_env(INTERCHANGE_CONNECTORS__HTTP__PORT="eighty")
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "health", "-c", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "connectors.http.port: Input should be a valid integer" in done.stderr
