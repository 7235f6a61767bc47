"""The error hierarchy: a wrong setting is not a transport error, and every error class the
package defines can be imported from ``interchange.errors``."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import interchange
import interchange.errors
from interchange.adapters import open_commands, open_events
from interchange.config import load_settings
from interchange.errors import (
    ConfigurationError,
    InvalidSettings,
    InvalidURL,
    TransportError,
    UnknownBackend,
)

INTERNAL = {
    # raised and caught inside one connector, never reaching a caller
    "interchange.connectors.folders.formats.BadFile",
    "interchange.connectors.http.bodies.BadBody",
    "interchange.connectors.http.auth.Denied",
    # the pytest helpers' own assertion (interchange.testing.wait_until), for users' tests
    "interchange.testing.WaitTimeout",
}


def _retrying_on_transport_errors(call):
    """What a caller that retries a broker coming back writes."""
    try:
        return call()
    except TransportError:
        return "retried"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: open_commands("amqp://svc:pw@127.0.0.1:1//?prefetc=1"), InvalidURL),
        (lambda: open_events("kafka://127.0.0.1:1?lingr_ms=5"), InvalidURL),
        (lambda: open_commands("amqq://127.0.0.1//"), UnknownBackend),
        (lambda: load_settings({"retry": {"max_attempts": 0}}), InvalidSettings),
    ],
    ids=["amqp option", "kafka option", "scheme", "settings"],
)
def test_except_transport_error_does_not_catch_a_configuration_error(call, error):
    with pytest.raises(error) as caught:
        _retrying_on_transport_errors(call)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, ValueError)  # as documented before the tree had a branch
    assert not isinstance(caught.value, TransportError)


def test_invalid_settings_lists_each_problem_without_echoing_input():
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"backends": {"commands": 5, "comands": "s3cret"}})
    assert caught.value.problems == [
        "backends.commands: Input should be a valid string",
        "backends.comands: Extra inputs are not permitted",
    ]
    assert "s3cret" not in str(caught.value)


def _error_classes() -> dict[str, type[BaseException]]:
    found = {}
    # the three folders are installed apart (package-dir), so each is walked on its own
    names = ["interchange", "interchange.adapters", "interchange.contracts"]
    for root in list(names):
        package = importlib.import_module(root)
        names += [info.name for info in pkgutil.walk_packages(package.__path__, f"{root}.")]
    for name in dict.fromkeys(names):
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_error_class_of_the_package_is_importable_from_interchange_errors():
    classes = _error_classes()
    assert "interchange.adapters.errors.InvalidURL" in classes  # the walk sees every leaf
    assert "interchange.contracts.versions.NoConverter" in classes
    missing = sorted(
        where
        for where, cls in classes.items()
        if where not in INTERNAL and getattr(interchange.errors, cls.__name__, None) is not cls
    )
    assert missing == []
    assert set(interchange.errors.__all__) == {
        name for name, value in vars(interchange.errors).items() if isinstance(value, type)
    }


def test_the_alias_nothing_used_is_gone():
    assert not hasattr(interchange, "BrokerUnavailable")
    assert not hasattr(interchange.errors, "BrokerUnavailable")


def test_health_shows_a_url_it_cannot_use_as_down_instead_of_raising():
    from interchange.health import check

    [unknown, invalid] = check(["amqq://127.0.0.1//", "amqp://127.0.0.1:1//?prefetc=1"], 1.0)
    assert not unknown.up
    assert "scheme 'amqq'" in unknown.detail
    assert not invalid.up
    assert "unknown amqp:// option 'prefetc'" in invalid.detail
