"""The ``interchange`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from integrations.config import load_settings

app = typer.Typer(help="Interchange: commands and events over real brokers.", no_args_is_help=True)
console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="interchange.toml or .yaml; INTERCHANGE_* env overrides"),
]


@app.command()
def demo(config: ConfigOption = None) -> None:
    """Run the legacy-integration demo on the configured backends (memory:// by default)."""
    from integrations.demo import run_demo

    _log_to(console)
    if not run_demo(load_settings(config), console):
        raise typer.Exit(1)


@app.command()
def health(
    config: ConfigOption = None,
    url: Annotated[
        list[str] | None,
        typer.Option("--url", "-u", help="check this backend URL instead of the configured ones"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each backend")] = 5.0,
) -> None:
    """Check each backend for real (AMQP connection + channel, Kafka metadata, Redis PING).
    Exits 1 when any is down."""
    from rich.table import Table

    from integrations.health import check

    settings = load_settings(config)
    results = check(url or [settings.backends.commands, settings.backends.events], timeout)
    table = Table(title="Interchange backends")
    for column in ("backend", "status", "detail", "answered in"):
        table.add_column(column)
    for result in results:
        status = "[green]up[/green]" if result.up else "[bold red]down[/bold red]"
        table.add_row(result.url, status, result.detail, f"{result.seconds * 1000:.0f} ms")
    console.print(table)
    if not all(result.up for result in results):
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as installed

    console.print(installed("interchange"))


def _log_to(out: Console) -> None:
    import logging

    from rich.logging import RichHandler

    handler = RichHandler(console=out, show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])


def main() -> None:
    app()
