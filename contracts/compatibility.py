"""Schema compatibility between versions of a contract, with Schema Registry's modes.

BACKWARD: the new version can read what the old one wrote (consumers upgrade first; the
default). FORWARD: the old version can read what the new one writes. FULL: both. The
``_TRANSITIVE`` forms check against every earlier version instead of the latest. NONE: no check.

The rules are Confluent Schema Registry's for JSON Schema, including its content models: a
*closed* model (``additionalProperties: false``, which our contracts emit) rejects unknown
fields, an *open* one accepts anything. So, for a reader R of data written by W:
  - a field W may write that closed R does not know: "field removed" (R would reject it);
  - a field R knows that open W did not declare: breaking (W's data may hold anything there);
  - a field R requires that W does not always write: "required field added without default";
  - a type W may write that R does not accept: "type changed" / "type narrowed";
  - an enum value W may write that R lacks: "enum value removed".
With closed contracts the common safe evolution — adding an optional field — passes BACKWARD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal[
    "NONE",
    "BACKWARD",
    "FORWARD",
    "FULL",
    "BACKWARD_TRANSITIVE",
    "FORWARD_TRANSITIVE",
    "FULL_TRANSITIVE",
]
MODES: tuple[str, ...] = Mode.__args__  # type: ignore[attr-defined]
Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Break:
    contract: str
    version: int
    against: int
    mode: str
    path: str
    problem: str

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return (
            f"{self.contract} v{self.version} is not {self.mode}-compatible with "
            f"v{self.against}{where}: {self.problem}"
        )


def check(
    contract: str,
    version: int,
    schema: Schema,
    earlier: Mapping[int, Schema],
    mode: str = "BACKWARD",
) -> list[Break]:
    """Every way ``schema`` (``version``) breaks ``mode`` against the ``earlier`` versions."""
    if mode not in MODES:
        raise ValueError(f"unknown compatibility mode {mode!r}; known: {', '.join(MODES)}")
    if mode == "NONE" or not earlier:
        return []
    previous = sorted(earlier)
    targets = previous if mode.endswith("_TRANSITIVE") else previous[-1:]
    base = mode.removesuffix("_TRANSITIVE")
    breaks = []
    for old in targets:
        pairs = []
        if base in ("BACKWARD", "FULL"):
            pairs.append((schema, earlier[old]))  # new reads old
        if base in ("FORWARD", "FULL"):
            pairs.append((earlier[old], schema))  # old reads new
        for reader, writer in pairs:
            for path, problem in _readable(_Doc(reader), reader, _Doc(writer), writer, ""):
                breaks.append(Break(contract, version, old, mode, path, problem))
    return breaks


class _Doc:
    """A root schema, for resolving ``$ref`` into its ``$defs``."""

    def __init__(self, root: Schema) -> None:
        self.defs = root.get("$defs", {})

    def resolve(self, schema: Schema) -> Schema:
        seen = 0
        while "$ref" in schema and seen < 32:
            schema = {
                **self.defs.get(schema["$ref"].rsplit("/", 1)[-1], {}),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
            seen += 1
        return schema


def _alternatives(doc: _Doc, schema: Schema) -> list[Schema]:
    schema = doc.resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [a for option in schema[key] for a in _alternatives(doc, option)]
    return [schema]


def _types(schema: Schema) -> set[str]:
    if "const" in schema:
        return {_json_type(schema["const"])}
    if "enum" in schema and "type" not in schema:
        return {_json_type(v) for v in schema["enum"]}
    kind = schema.get("type")
    if kind is None:
        return {"any"}
    return set(kind) if isinstance(kind, list) else {kind}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), "any")


def _accepts(reader: set[str], kind: str) -> bool:
    return "any" in reader or kind in reader or (kind == "integer" and "number" in reader)


def _readable(
    rdoc: _Doc, reader: Schema, wdoc: _Doc, writer: Schema, path: str
) -> list[tuple[str, str]]:
    """Where the reader cannot read some value the writer may write."""
    problems: list[tuple[str, str]] = []
    readers = _alternatives(rdoc, reader)
    reader_types = set().union(*(_types(r) for r in readers))
    for written in _alternatives(wdoc, writer):
        for kind in sorted(_types(written)):
            if kind == "any" and "any" not in reader_types:
                problems.append((path, f"type narrowed from anything to {_show(reader_types)}"))
            elif kind != "any" and not _accepts(reader_types, kind):
                change = "narrowed" if kind == "number" and "integer" in reader_types else "changed"
                problems.append((path, f"type {change} from {kind} to {_show(reader_types)}"))
        matching = [r for r in readers if _types(written) & _types(r) or "any" in _types(r)]
        target = matching[0] if matching else None
        if target is None:
            continue
        if "enum" in target:
            offered = written.get("enum") or ([written["const"]] if "const" in written else None)
            if offered is None:
                problems.append((path, f"enum narrowed: any value became one of {target['enum']}"))
            else:
                for value in offered:
                    if value not in target["enum"]:
                        problems.append((path, f"enum value {value!r} removed"))
        if "object" in _types(written) and "object" in _types(target):
            problems += _object(rdoc, target, wdoc, written, path)
        if "array" in _types(written) and "array" in _types(target):
            problems += _readable(
                rdoc, target.get("items", {}), wdoc, written.get("items", {}), f"{path}[]"
            )
    return problems


def _object(
    rdoc: _Doc, reader: Schema, wdoc: _Doc, writer: Schema, path: str
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    r_props, w_props = reader.get("properties", {}), writer.get("properties", {})
    r_required, w_required = set(reader.get("required", [])), set(writer.get("required", []))
    reader_closed = reader.get("additionalProperties") is False
    writer_closed = writer.get("additionalProperties") is False
    for name in sorted(r_required - w_required):
        field = _join(path, name)
        if name in w_props:
            problems.append((field, f"field '{name}' became required"))
        else:
            problems.append((field, f"required field '{name}' added without default"))
    for name in sorted(set(w_props) - set(r_props)):
        if reader_closed:
            problems.append((_join(path, name), f"field '{name}' removed"))
    for name in sorted(set(r_props) - set(w_props)):
        if not writer_closed and name not in r_required:
            problems.append(
                (_join(path, name), f"optional field '{name}' added to an open content model")
            )
    for name in sorted(set(r_props) & set(w_props)):
        problems += _readable(rdoc, r_props[name], wdoc, w_props[name], _join(path, name))
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(kinds: set[str]) -> str:
    return " or ".join(sorted(kinds))
