"""The shape of the code, checked: layers, import cycles, the same rooms in every broker package,
module sizes. A newcomer who learned one broker finds the same thing in the next."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"integrations": "interchange", "contracts": "interchange.contracts"}
FOLDERS["adapters"] = "interchange.adapters"
BROKERS = ("memory", "rabbitmq", "kafka", "redis")
ROOMS = {"__init__.py", "transport.py", "wire.py", "consumer.py", "errors.py", "options.py"}


def _module_of(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    if rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join([FOLDERS[folder], *rest])


def _modules(folder: str) -> dict[str, Path]:
    return {_module_of(path): path for path in sorted((ROOT / folder).rglob("*.py"))}


ALL = {name: path for folder in FOLDERS for name, path in _modules(folder).items()}


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports, anywhere in it (TYPE_CHECKING blocks and functions too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def _graph(folders: tuple[str, ...] = ("adapters", "integrations")) -> dict[str, set[str]]:
    """Edges between the modules of ``folders``. A package's ``__init__`` importing its own
    rooms is how it shows its public names, not a dependency: those edges are left out."""
    modules = {name: path for folder in folders for name, path in _modules(folder).items()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in _imports(path) if t in modules and t != name}
        if path.name == "__init__.py":
            targets = {t for t in targets if not t.startswith(name + ".")}
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_adapters_and_integrations_have_no_import_cycle():
    graph = _graph()
    assert len(graph) > 60
    assert "interchange.adapters.kafka.wire" in graph["interchange.adapters.kafka.consumer"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles_through_several_modules():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize(
    ("folder", "allowed", "forbidden"),
    [
        ("adapters", "interchange.adapters", {"interchange", "contracts", "integrations"}),
        (
            "contracts",
            "interchange.contracts",
            {"interchange", "adapters", "kombu", "confluent_kafka", "redis", "amqp"},
        ),
    ],
)
def test_adapters_and_contracts_are_leaves_that_do_not_know_each_other(folder, allowed, forbidden):
    for name, path in _modules(folder).items():
        for target in _imports(path):
            top = target.split(".")[0]
            if target == allowed or target.startswith(allowed + "."):
                continue
            assert top not in forbidden, f"{name} imports {target}"


def test_adapters_use_pydantic_only_for_url_options():
    for name, path in _modules("adapters").items():
        uses = any(t.split(".")[0] == "pydantic" for t in _imports(path))
        assert not uses or name.endswith((".options", ".urls")), f"{name} imports pydantic"


def test_a_broker_client_is_imported_only_inside_its_adapter_package():
    drivers = {
        "kombu": "rabbitmq",
        "amqp": "rabbitmq",
        "confluent_kafka": "kafka",
        "redis": "redis",
    }
    for name, path in ALL.items():
        for target in _imports(path):
            package = drivers.get(target.split(".")[0])
            if package is not None:
                assert name.startswith(f"interchange.adapters.{package}"), (name, target)


@pytest.mark.parametrize("broker", BROKERS)
def test_every_broker_package_has_the_same_rooms(broker):
    files = {path.name for path in (ROOT / "adapters" / broker).glob("*.py")}
    assert files >= ROOMS, f"{broker} lacks {sorted(ROOMS - files)}"


@pytest.mark.parametrize("broker", BROKERS)
def test_every_broker_package_opens_with_a_datasheet_and_capabilities(broker):
    source = (ROOT / "adapters" / broker / "__init__.py").read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    for heading in ("Features", "Connection string", "Options", "Guarantees", "Rooms"):
        assert heading in docstring, f"{broker}'s datasheet has no {heading!r}"
    assert "CAPABILITIES" in source


def test_no_adapter_module_is_over_350_lines_and_the_bus_neither():
    sizes = {path: len(path.read_text().splitlines()) for path in ALL.values()}
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path, lines in sizes.items()
        if lines > 350 and (path.is_relative_to(ROOT / "adapters") or path.name == "bus.py")
    }
    assert not too_long
