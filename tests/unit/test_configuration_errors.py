"""A wrong setting is a ConfigurationError with one clear line, wherever it is met: while
``interchange run`` imports a service that builds its Bus at module level, in a structured
environment variable that is not JSON, in a configuration file that is missing or empty."""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest

from interchange import Bus
from interchange.errors import ConfigurationError, ConfigurationWarning, InvalidSettings

SERVICE = """\
from interchange import Bus, Command

class Work(Command, name="cfg{sfx}.work", version=1):
    n: int

bus = Bus.from_config()

@bus.handles(Work)
def work(command, ctx):
    pass
"""


def _run_service(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    module = f"svc_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SERVICE.format(sfx=uuid.uuid4().hex[:8]))
    return subprocess.run(
        [sys.executable, "-m", "interchange", "run", f"{module}:bus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**_clean_environment(), **env},
    )


def _clean_environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")}


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ({"INTERCHANGE_RETRY__MAX_ATTEMPTS": "abc"}, "retry.max_attempts"),
        ({"file": "retyr = {}\n"}, "retyr: Extra inputs are not permitted"),
        ({"INTERCHANGE_BACKENDS__COMMANDS": "memory://?bogus=1"}, "unknown memory:// option"),
    ],
    ids=["variable", "file key", "url option"],
)
def test_a_wrong_setting_met_while_the_service_builds_its_bus_is_one_line_and_exit_2(
    tmp_path: Path, setting: dict[str, str], said: str
) -> None:
    args: list[str] = []
    env = dict(setting)
    if "file" in env:
        config = tmp_path / "bad.toml"
        config.write_text(env.pop("file"))
        args = ["--config", str(config)]
    done = _run_service(tmp_path, *args, **env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("interchange: error: ")
    assert said in line
    assert "Traceback" not in done.stderr


def test_a_route_partition_key_the_contract_lacks_is_one_line_and_exit_2(tmp_path: Path) -> None:
    module, suffix = f"svc_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    name = f"cfg{suffix}.work"
    (tmp_path / f"{module}.py").write_text(SERVICE.format(sfx=suffix))
    config = tmp_path / "routes.toml"
    config.write_text(f'[routes."{name}"]\npartition_key = "nn"\n')
    done = subprocess.run(
        [sys.executable, "-m", "interchange", "run", f"{module}:bus", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=_clean_environment(),
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "nn" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INTERCHANGE_CONNECTORS__HTTP__API_KEYS", "SECRET-NOT-JSON"),
        ("INTERCHANGE_ROUTES", "notjson"),
        ("INTERCHANGE_RETRY", "{bad"),
    ],
)
def test_a_structured_variable_that_is_not_json_is_named_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("INTERCHANGE_RETRY__MAX_ATTEMPTS", "3")  # plain: never blamed
    with pytest.raises(InvalidSettings) as raised:
        Bus.from_config({})
    assert raised.value.problems == [f"{variable}: must be JSON (a list or table of values)"]
    assert value not in str(raised.value)


def test_a_missing_configuration_file_is_a_configuration_error_and_a_file_not_found(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigurationError) as raised:
        Bus.from_config(missing)
    assert isinstance(raised.value, FileNotFoundError)
    assert str(raised.value) == f"no such file: {missing}"


def test_an_empty_configuration_file_is_every_setting_at_its_default(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    assert Bus.from_config(tmp_path / "empty.toml").settings.retry.max_attempts > 0
    assert Bus.from_config("/dev/null").settings.backends.commands == "memory://"


def test_run_takes_config_dev_null_as_an_empty_configuration(tmp_path: Path) -> None:
    done = _run_service(tmp_path, "--config", "/dev/null", INTERCHANGE_RETRY__MAX_ATTEMPTS="0")
    assert done.returncode == 2, done.stderr
    assert "retry.max_attempts" in done.stderr  # the file was read (empty), then the variable
    assert "no such file" not in done.stderr


def test_a_misspelled_variable_is_warned_at_the_callers_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERCHANGE_" + "BACKEND__EVENTS", "memory://")  # misspelt on purpose
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Bus.from_config({})
    [warning] = [w for w in caught if issubclass(w.category, ConfigurationWarning)]
    assert warning.filename == __file__
