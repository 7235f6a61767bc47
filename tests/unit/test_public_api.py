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


def test_adapters_never_import_contracts_and_contracts_never_import_a_broker():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for package, forbidden in (
        ("adapters", {"contracts", "pydantic", "integrations"}),
        ("contracts", {"adapters", "integrations", "kombu", "confluent_kafka", "redis"}),
    ):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    assert name.split(".")[0] not in forbidden, f"{path} imports {name}"
