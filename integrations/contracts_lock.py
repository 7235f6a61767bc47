"""The contract gate: ``interchange contracts export`` and ``interchange contracts check``.

``export`` writes the JSON Schema of every registered contract version (``schemas/``) and a
lock file. ``check`` compares the contracts in the code with the lock, each under its own
compatibility mode, and lists every break: a new version against the locked history, an edited
published version against its locked self, a locked version no longer declared. Adding a
compatible version passes without touching the lock; ``export`` records the new state.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from interchange.contracts import Contract, registry
from interchange.contracts.compatibility import check
from interchange.runtime import importable_from_here

LOCK_FORMAT = 1


def load_modules(modules: Iterable[str]) -> list[type[Contract]]:
    """The contracts declared in these modules (imported here; declaring registers them)."""
    names = list(modules)
    importable_from_here()
    for module in names:
        importlib.import_module(module)
    return [
        c
        for c in registry.all()
        if any(c.__module__ == m or c.__module__.startswith(m + ".") for m in names)
    ]


def schema_of(contract: type[Contract]) -> dict[str, Any]:
    return contract.model_json_schema()


def snapshot(contracts: Iterable[type[Contract]]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for contract in contracts:
        entry = entries.setdefault(
            contract.contract_name,
            {
                "kind": contract.contract_kind,
                "compatibility": contract.contract_compatibility,
                "versions": {},
            },
        )
        entry["versions"][str(contract.contract_version)] = schema_of(contract)
    return {"format": LOCK_FORMAT, "contracts": dict(sorted(entries.items()))}


def export(contracts: list[type[Contract]], lock: Path, schemas: Path) -> int:
    data = snapshot(contracts)
    schemas.mkdir(parents=True, exist_ok=True)
    for name, entry in data["contracts"].items():
        for version, schema in entry["versions"].items():
            (schemas / f"{name}.v{version}.json").write_text(json.dumps(schema, indent=2) + "\n")
    lock.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return sum(len(e["versions"]) for e in data["contracts"].values())


def problems(contracts: list[type[Contract]], lock: Path) -> list[str]:
    """Every way the code's contracts break the lock, as sentences naming contract, version
    and field."""
    locked = json.loads(lock.read_text())["contracts"]
    current = snapshot(contracts)["contracts"]
    found: list[str] = []
    for name, entry in current.items():
        mode = entry["compatibility"]
        history = {int(v): s for v, s in locked.get(name, {}).get("versions", {}).items()}
        for version in sorted(int(v) for v in entry["versions"]):
            schema = entry["versions"][str(version)]
            if history.get(version) == schema:
                continue
            earlier = {v: s for v, s in history.items() if v < version}
            if version in history:  # a published version edited in place: its old self is last
                earlier[version] = history[version]
            found += [str(b) for b in check(name, version, schema, earlier, mode)]
    for name, entry in locked.items():
        for version in entry["versions"]:
            if version not in current.get(name, {}).get("versions", {}):
                found.append(
                    f"{name} v{version} is in the lock but no longer declared: consumers may still "
                    "read it (run contracts export to accept its removal)"
                )
    return found
