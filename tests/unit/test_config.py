"""Configuration: files, dicts, environment overrides, validation, backend lookup."""

import re
import subprocess
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

from interchange import Bus, ConfigurationWarning, Settings, load_settings
from interchange.adapters import UnknownBackend, open_commands


def test_the_smallest_config_names_only_backends():
    bus = Bus.from_config({"backends": {"commands": "memory://", "events": "memory://"}})
    assert bus.settings.routes == {}
    assert bus.settings.retry.max_attempts == 3
    bus.close()


def test_toml_and_yaml_files_give_the_same_settings(tmp_path):
    toml = tmp_path / "interchange.toml"
    toml.write_text(
        'source = "shop"\n[backends]\ncommands = "memory://x"\n'
        '[routes."orders.place_order"]\nqueue = "orders"\n[retry]\nmax_attempts = 5\n'
    )
    yaml = tmp_path / "interchange.yaml"
    yaml.write_text(
        "source: shop\nbackends:\n  commands: memory://x\n"
        "routes:\n  orders.place_order:\n    queue: orders\nretry:\n  max_attempts: 5\n"
    )
    from_toml, from_yaml = load_settings(toml), load_settings(yaml)
    assert from_toml == from_yaml
    assert from_toml.route("orders.place_order").queue == "orders"
    assert from_toml.retry.max_attempts == 5


def test_environment_variables_override_the_file(tmp_path, monkeypatch):
    path = tmp_path / "interchange.toml"
    path.write_text('source = "file"\n[backends]\ncommands = "memory://from-file"\n')
    monkeypatch.setenv("INTERCHANGE_SOURCE", "env")
    monkeypatch.setenv("INTERCHANGE_BACKENDS__EVENTS", "memory://from-env")
    settings = load_settings(path)
    assert settings.source == "env"
    assert settings.backends.commands == "memory://from-file"
    assert settings.backends.events == "memory://from-env"


def test_a_missing_config_file_falls_back_to_interchange_toml_or_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(None) == Settings()
    (tmp_path / "interchange.toml").write_text('source = "here"\n')
    assert load_settings(None).source == "here"


def test_typos_in_the_config_are_errors_not_silently_ignored():
    with pytest.raises(ValidationError, match="qeue"):
        Settings(routes={"a": {"qeue": "x"}})
    with pytest.raises(ValidationError, match="max_attempts"):
        Settings(retry={"max_attempts": 0})


def test_an_unsupported_file_type_is_refused(tmp_path):
    path = tmp_path / "interchange.ini"
    path.write_text("x")
    with pytest.raises(ValueError, match=r"must end in \.toml, \.yaml or \.yml"):
        load_settings(path)


def test_an_unknown_scheme_names_the_known_ones_and_guesses():
    with pytest.raises(
        UnknownBackend, match=r"scheme 'memry'.*did you mean 'memory'\?.*known"
    ) as caught:
        open_commands("memry://")
    assert "for scheme for scheme" not in str(caught.value)
    assert "'memry://'" in str(caught.value)


def test_a_scheme_that_serves_the_other_side_names_the_schemes_that_serve_this_one():
    with pytest.raises(UnknownBackend, match=r"no command backend for scheme 'kafka'.*amqp"):
        open_commands("kafka://127.0.0.1:9092")


def test_retry_delays_grow_and_are_capped():
    settings = Settings(retry={"initial_delay": 0.5, "multiplier": 2, "max_delay": 3})
    assert [settings.retry.delay(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_the_example_configurations_say_the_same_in_toml_and_yaml():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    toml, yaml = load_settings(examples / "brokers.toml"), load_settings(examples / "brokers.yaml")
    assert toml == yaml
    assert toml.backends.commands.startswith("amqp://")
    assert toml.backends.events.startswith("kafka://")
    assert toml.backends.fallback == "redis://127.0.0.1:6379/0"
    assert toml.route("orders.order_placed").partition_key == "order_id"


def test_the_variables_up_env_prints_are_the_ones_the_bus_reads(monkeypatch):
    import re
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "compose" / "native" / "up").read_text()
    printed = re.findall(r"export (INTERCHANGE_\w+)=", script)
    assert printed == [
        "INTERCHANGE_BACKENDS__COMMANDS",
        "INTERCHANGE_BACKENDS__EVENTS",
        "INTERCHANGE_BACKENDS__FALLBACK",
        "INTERCHANGE_POSTGRES_URL",  # not a Bus setting: the postgres_url fixture reads it
        "INTERCHANGE_TOXIPROXY_URL",  # nor this: the network fault tests read it
        "INTERCHANGE_KAFKA_CLUSTER_URL",  # nor these two: the cluster fault tests read them
        "INTERCHANGE_AMQP_CLUSTER_URL",
    ]
    printed = printed[:3]
    urls = ["amqp://guest:guest@127.0.0.1:5672//", "kafka://127.0.0.1:9092", "redis://h:6379/0"]
    for name, url in zip(printed, urls, strict=True):
        monkeypatch.setenv(name, url)
    backends = load_settings({}).backends
    assert (backends.commands, backends.events, backends.fallback) == tuple(urls)


def test_a_misspelled_environment_variable_warns_with_the_name_it_probably_meant(monkeypatch):
    """pydantic-settings ignores a variable that matches no field: the events backend stayed
    memory:// without a word. Now it warns, naming the variable meant."""
    monkeypatch.setenv("INTERCHANGE_BACKEND__EVENTS", "kafka://127.0.0.1:9092")
    monkeypatch.setenv("INTERCHANGE_CHANEL_PREFIX", "x.")
    with pytest.warns(ConfigurationWarning) as caught:
        settings = Settings()
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "INTERCHANGE_BACKEND__EVENTS sets no setting" in messages[0]
    assert "did you mean INTERCHANGE_BACKENDS__EVENTS?" in messages[0]
    assert "did you mean INTERCHANGE_CHANNEL_PREFIX?" in messages[1]
    assert settings.backends.events == "memory://"  # ignored, as the warning says


def test_no_interchange_variable_the_project_itself_reads_warns(monkeypatch):
    """Every INTERCHANGE_* name written anywhere in the repository (settings, the pytest
    plugin's and the broker scripts' own variables) is known; the suite runs warnings as
    errors, so a new one nobody taught the check would fail here first."""
    root = Path(__file__).resolve().parents[2]
    names: set[str] = set()
    # the repository's own files only: what an install generates (egg-info's copy of the
    # README, with its deliberately misspelt example) is not the project's code
    listed = subprocess.run(
        ["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    for path in (root / name for name in listed):
        code = path.suffix in {"", ".py", ".sh", ".toml", ".yml", ".yaml", ".json", ".cfg"}
        if code and path != Path(__file__):  # this file misspells variables on purpose
            try:
                found = re.findall(r"INTERCHANGE_[A-Z0-9_]*[A-Z0-9]", path.read_text())
            except (UnicodeDecodeError, OSError):
                continue
            names.update(found)
    assert {"INTERCHANGE_REQUIRE_BROKERS", "INTERCHANGE_AMQP_PORT"} <= names
    for name in names:
        key = name.removeprefix("INTERCHANGE_").split("__")[0].lower()
        if key not in Settings.model_fields:  # settings are known by construction
            monkeypatch.setenv(name, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigurationWarning)
        Settings()
