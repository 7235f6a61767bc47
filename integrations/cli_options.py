"""What the ``interchange`` commands share: their consoles, the --config and --module options,
reading a time, finding a contract by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from interchange.config import Settings

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="interchange.toml or .yaml; INTERCHANGE_* env overrides"),
]
ModulesOption = Annotated[
    list[str] | None,
    typer.Option("--module", "-m", help="module declaring contracts (default: contract_modules)"),
]


def when(text: str | None) -> Any:
    """A --since/--until value: ``earliest`` or an ISO 8601 time (UTC when it names no zone)."""
    if text is None or text in ("earliest", "beginning"):
        return None if text is None else "earliest"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither 'earliest' nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def contract_named(
    name: str, settings: Settings, modules: list[str] | None, version: int | None = None
) -> Any:
    """The contract class called ``name`` (its newest version unless ``version``), declared by
    ``modules`` or the settings' ``contract_modules``. Raises ValueError when none is."""
    from interchange.contracts import registry
    from interchange.contracts_lock import load_modules

    load_modules(modules or settings.contract_modules)
    model = registry.get(name, version) if version else registry.latest(name)
    if model is None:
        raise ValueError(f"{name!r} is not a contract declared by the given modules")
    return model
