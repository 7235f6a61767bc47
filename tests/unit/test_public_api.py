"""The public names that users and later checks import stay exactly as documented."""

import importlib

import pytest

DOCUMENTED = {
    "interchange.contracts": {"Command", "Event", "Envelope", "Codec", "DecodeError", "registry"},
    "interchange.adapters": {
        "TransportMessage",
        "CommandTransport",
        "EventTransport",
        "Capabilities",
    },
    "interchange": {
        "Bus",
        "Command",
        "Event",
        "HandlerContext",
        "Settings",
        "RequestTimeout",
        "PublishRejected",
    },
}


@pytest.mark.parametrize("package", sorted(DOCUMENTED))
def test_all_lists_exactly_the_public_names(package):
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, type(importlib))
    }
    assert set(module.__all__) == public
    assert DOCUMENTED[package] <= set(module.__all__)


def test_the_bus_has_the_verbs_of_the_design():
    from interchange import Bus

    for verb in (
        "send",
        "broadcast",
        "request",
        "publish",
        "handles",
        "subscribes",
        "replay",
        "seek",
        "start",
        "stop",
        "__enter__",
        "__exit__",
        "from_config",
    ):
        assert callable(getattr(Bus, verb)), verb
