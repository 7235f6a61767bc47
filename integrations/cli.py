"""The ``interchange`` command line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from interchange.adapters import TransportError, redact
from interchange.cli_operator import dlq_app, replay, tail
from interchange.cli_options import ConfigOption, ModulesOption, console
from interchange.config import load_settings
from interchange.errors import PollerError
from interchange.runtime import DEFAULT_GRACE

app = typer.Typer(no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.command()(replay)
app.command()(tail)


@app.command()
def demo(config: ConfigOption = None) -> None:
    """Run the legacy-integration demo on the configured backends (memory:// by default)."""
    from interchange.demo import run_demo

    _log_to(console)
    if not run_demo(load_settings(config), console):
        raise typer.Exit(1)


def _print_circuits(reports: dict[str, dict[str, Any]]) -> None:
    """Each running Bus with a fallback reports its circuits to the spool: show them all."""
    from rich.table import Table

    if not reports:
        console.print("failover circuits: no running Bus with this fallback reports any")
        return
    table = Table(title="Failover circuits (running Buses, as they last reported)")
    for column in ("process (host:pid:bus)", "side", "circuit", "spooled", "drained", "age"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for process, status in sorted(reports.items()):
        age = f"{max(0.0, now - float(status.get('reported_at', now))):.1f} s"
        for side in ("commands", "events"):
            if side in status:
                circuit = status[side]["circuit"]
                shown = circuit if circuit == "closed" else f"[bold red]{circuit}[/bold red]"
                table.add_row(
                    process,
                    side,
                    shown,
                    str(status[side]["spooled"]),
                    str(status[side]["drained"]),
                    age,
                )
    console.print(table)


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

    from interchange.health import check

    settings = load_settings(config)
    backends = settings.backends
    urls = url or [backends.commands, backends.events, *filter(None, [backends.fallback])]
    results = check(urls, timeout)
    table = Table(title="Interchange backends")
    for column in ("backend", "status", "detail", "answered in"):
        table.add_column(column, overflow="fold")  # a URL shown whole, never cut short
    for result in results:
        status = "[green]up[/green]" if result.up else "[bold red]down[/bold red]"
        table.add_row(result.url, status, result.detail, f"{result.seconds * 1000:.0f} ms")
    console.print(table)
    fallback_up = any(
        r.up for r in results if backends.fallback and r.url == redact(backends.fallback)
    )
    if backends.fallback and not url and fallback_up:
        from interchange.adapters import open_spool
        from interchange.adapters.spool_names import namespace, primary_identity

        spool = open_spool(backends.fallback, timeout=timeout)
        # the spool's lines are named after their primary: count this configuration's apart
        ours = [
            namespace(side, primary_identity(primary))
            for side, primary in (("commands", backends.commands), ("events", backends.events))
        ]
        waiting, everything = sum(spool.depth(n) for n in ours), spool.depth()
        console.print(
            f"fallback spool: {waiting} message(s) for these primaries waiting to be drained; "
            f"{everything - waiting} for other primaries (or in lines of a version that did not "
            "name them after their primary)"
        )
        refused = sum(spool.refused(n) for n in ours)
        if refused:
            console.print(
                f"[bold red]{refused} spooled message(s) refused by the primary, set aside"
                "[/bold red]: redis-cli SMEMBERS interchange:spool-refused-lines, "
                "XRANGE interchange:spool-refused:<line> - +"
            )
        _print_circuits(spool.reports())
        spool.close()
    if not all(result.up for result in results):
        raise typer.Exit(1)


@app.command()
def drain(config: ConfigOption = None) -> None:
    """Forward what the fallback spool holds to the primaries, oldest first, with progress.
    Exits 1 when messages remain (a primary is still down)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from interchange.bus import Bus

    _log_to(console)
    settings = load_settings(config)
    if not settings.backends.fallback:
        console.print("no backends.fallback configured: nothing to drain")
        return
    bus = Bus(settings)
    assert bus.drainer is not None
    waiting = bus.drainer.depth()
    with Progress(
        TextColumn("draining"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("drain", total=waiting)
        forwarded = bus.drainer.drain(progress=lambda n: bar.advance(task, n))
    left, refused = bus.drainer.depth(), bus.drainer.refused()
    bus.close()
    console.print(f"forwarded {forwarded} message(s); {left} still in the spool")
    if refused:  # set aside: they no longer hold the drain, an operator decides (README)
        console.print(
            f"[bold red]{refused} spooled message(s) refused by the primary, set aside[/bold red]"
            ": redis-cli SMEMBERS interchange:spool-refused-lines"
        )
    if left:
        raise typer.Exit(1)


OpsPortOption = Annotated[
    int | None,
    typer.Option(help="serve /healthz, /readyz and /metrics on this port (the ops extra)"),
]
OpsHostOption = Annotated[str, typer.Option(help="the address the ops port binds")]
LogFormatOption = Annotated[
    str, typer.Option(help="text (for people) or json (one object a line, for machines)")
]


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="the service's Bus: package.module:attribute")],
    config: ConfigOption = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="worker processes, supervised")
    ] = 1,
    grace: Annotated[
        float,
        typer.Option(min=0, help="seconds in-flight handlers get to finish on SIGTERM/SIGINT"),
    ] = DEFAULT_GRACE,
    ops_port: OpsPortOption = None,
    ops_host: OpsHostOption = "127.0.0.1",
    log_format: LogFormatOption = "text",
    wait_for_brokers: Annotated[
        float,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="at start, try a broker that does not answer again for up to this long "
            "(default 0: once); exit 3 when it still does not",
        ),
    ] = 0.0,
    serving_file: Annotated[
        Path | None, typer.Option(hidden=True, help="touched once serving (for --workers)")
    ] = None,
) -> None:
    """Run a service: import its module (found from the current directory), start its
    consumers, print "serving" once they run, and serve until SIGTERM or SIGINT, which stop
    taking messages and let handlers in flight finish within the grace period (a second signal
    stops at once). A broker that does not answer at start is tried again for
    --wait-for-brokers seconds; then exit 3. With --workers N, N processes run under a
    supervisor that replaces one that dies. --ops-port P serves /healthz, /readyz and /metrics
    (with --workers: every worker's added up on P, worker k's own on P + 1 + k)."""
    from interchange.config import CONFIG_FILE_VARIABLE, ConfigFileNotFound
    from interchange.runtime import BrokersUnreachable, Supervisor, load_target, serve

    _log_to(console, level="INFO", log_format=log_format)
    if config is not None:
        if not config.exists():  # /dev/null is a file too: an empty configuration
            raise ConfigFileNotFound(2, "No such file", str(config))
        os.environ[CONFIG_FILE_VARIABLE] = str(config.resolve())  # for the service's from_config()
    if workers > 1:
        command = [sys.executable, "-m", "interchange", "run", target, "--grace", str(grace)]
        command += ["--ops-host", ops_host, "--log-format", log_format]
        command += ["--wait-for-brokers", str(wait_for_brokers)]

        from interchange.ops_workers import WorkersOps, worker_port

        def own_port(slot: int) -> list[str]:
            return [] if ops_port is None else ["--ops-port", str(worker_port(ops_port, slot))]

        gathered = None
        if ops_port is not None:
            ports = [worker_port(ops_port, slot) for slot in range(workers)]
            gathered = WorkersOps(ports, ops_port, ops_host)
            console.print(f"ops: {gathered.url}/metrics (workers' own: {ports[0]}-{ports[-1]})")
        try:
            code = Supervisor(command, workers, grace=grace, slot_args=own_port).run()
        finally:
            if gathered is not None:
                gathered.close()
        raise typer.Exit(code)
    bus = load_target(target)
    backends = bus.settings.backends
    named = {"commands": backends.commands, "events": backends.events}
    if backends.fallback:
        named["fallback"] = backends.fallback
    on = ", ".join(f"{side} {redact(url)}" for side, url in named.items())
    console.print(f"starting {target} (pid {os.getpid()}) on {on}", soft_wrap=True)
    if ops_port is not None:
        from interchange.ops import serve_ops

        console.print(f"ops: {serve_ops(bus, ops_port, ops_host).url}/metrics")

    def serving() -> None:
        console.print(f"serving {target} (pid {os.getpid()}) on {on}", soft_wrap=True)
        if serving_file is not None:  # tells the supervisor this worker got past its start
            serving_file.touch()

    try:
        finished = serve(bus, grace, wait_for_brokers=wait_for_brokers, on_serving=serving)
    except BrokersUnreachable as error:
        typer.echo(f"interchange: error: {one_line(error)}", err=True)
        raise typer.Exit(3) from None
    raise typer.Exit(0 if finished else 1)


@app.command()
def bridge(
    config: ConfigOption = None,
    ops_port: OpsPortOption = None,
    ops_host: OpsHostOption = "127.0.0.1",
    log_format: LogFormatOption = "text",
) -> None:
    """Run every connector the configuration declares ([connectors.http]: the HTTP gateway) in
    one process, until SIGTERM or SIGINT: in-flight requests finish, then it stops.
    --ops-port P serves /healthz, /readyz and /metrics."""
    from interchange.connectors.bridge import run_bridge

    _log_to(console, level="INFO", log_format=log_format)
    raise typer.Exit(run_bridge(load_settings(config), console, ops=(ops_port, ops_host)))


contracts_app = typer.Typer(help="The contract gate: JSON Schemas, a lock file, compatibility.")
app.add_typer(contracts_app, name="contracts")


def _contracts(config: Path | None, modules: list[str] | None) -> list[Any]:
    from interchange.contracts_lock import load_modules

    chosen = modules or load_settings(config).contract_modules
    if not chosen:
        console.print(
            "[red]no contracts: name their modules with --module or contract_modules[/red]"
        )
        raise typer.Exit(2)
    return load_modules(chosen)


@contracts_app.command("export")
def contracts_export(
    config: ConfigOption = None,
    module: ModulesOption = None,
    lock: Annotated[Path, typer.Option(help="lock file to write")] = Path("contracts.lock.json"),
    schemas: Annotated[Path, typer.Option(help="folder for one JSON Schema per version")] = Path(
        "schemas"
    ),
) -> None:
    """Write every contract version's JSON Schema and the lock file that check compares to."""
    from interchange.contracts_lock import export

    count = export(_contracts(config, module), lock, schemas)
    console.print(f"wrote {count} schema(s) to {schemas}/ and the lock to {lock}")


@contracts_app.command("check")
def contracts_check(
    config: ConfigOption = None,
    module: ModulesOption = None,
    lock: Annotated[Path, typer.Option(help="lock file to compare with")] = Path(
        "contracts.lock.json"
    ),
) -> None:
    """Compare the code's contracts with the lock under each contract's compatibility mode;
    exit 1 and say what broke where on any breaking change. The gate for a user's CI."""
    from interchange.contracts_lock import problems

    found = problems(_contracts(config, module), lock)
    for problem in found:
        console.print(f"[red]✗[/red] {problem}", markup=True, highlight=False, soft_wrap=True)
    if found:
        raise typer.Exit(1)
    console.print("contracts compatible with the lock")


outbox_app = typer.Typer(help="The transactional outbox (interchange-bus[sql]).")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("init")
def outbox_init(
    config: ConfigOption = None,
    url: Annotated[
        str | None, typer.Option(help="database URL (default: connectors.outbox)")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="table name (default: connectors.outbox)")
    ] = None,
) -> None:
    """Create (or migrate) the outbox table, its dead-letter table and, on PostgreSQL, its
    NOTIFY and commit-order triggers."""
    from interchange.adapters import redact
    from interchange.config import OutboxConnector
    from interchange.connectors.sql import create_outbox, engine_for  # the extra, or one line

    connectors = load_settings(config).connectors
    from sqlalchemy.exc import DBAPIError, OperationalError  # there once the extra is

    if url is None:
        connectors.check_complete()  # [connectors.outbox] given in part: say what it lacks
    configured = connectors.outbox
    if url is None and configured is None:
        raise ValueError("no database: give --url or declare [connectors.outbox] url = ...")
    chosen = OutboxConnector(
        url=url or configured.url,  # type: ignore[union-attr]
        table=table or (configured.table if configured else "interchange_outbox"),
    )
    engine = engine_for(chosen.url)
    try:
        create_outbox(engine, chosen.table)
    except DBAPIError as error:
        # one line like every mistake: exit 3 when the database did not answer (as `run` does
        # for a broker), 2 when it answered no (password, database name, privileges)
        answered = (
            engine.dialect.name != "postgresql"
            or not isinstance(error, OperationalError)
            or "FATAL" in str(error.orig)  # the server refused the session
        )
        reason = one_line(error.orig or error)
        typer.echo(f"interchange: error: outbox init at {redact(chosen.url)}: {reason}", err=True)
        raise typer.Exit(2 if answered else 3) from None
    finally:
        engine.dispose()
    console.print(f"outbox {chosen.table} ready at {redact(chosen.url)}")


@app.command()
def asyncapi(
    config: ConfigOption = None,
    module: ModulesOption = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of printing")] = None,
) -> None:
    """Write an AsyncAPI 3.0 document of the contracts and routes."""
    import json

    from interchange.asyncapi import document
    from interchange.bus import Bus

    contracts = _contracts(config, module)
    bus = Bus(load_settings(config))
    try:
        text = json.dumps(document(bus, contracts, bus.settings.source), indent=2)
    finally:
        bus.close()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        console.print(f"wrote {out}")


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(_installed_version())


def _installed_version() -> str:
    from importlib.metadata import version as installed

    return installed("interchange-bus")


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"interchange {_installed_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Interchange: commands and events over real brokers."""


def _log_to(out: Console, level: str = "WARNING", log_format: str = "text") -> None:
    """Logs of the ``interchange`` tree at ``level`` (others at WARNING): for people (rich) or,
    with ``json``, one JSON object a line on stderr with the record's fields (channel, group,
    message_id, contract, attempt where a delivery is concerned)."""
    import logging

    if log_format not in ("text", "json"):
        raise ValueError(f"--log-format is text or json, not {log_format!r}")
    handler: logging.Handler
    if log_format == "json":
        try:
            from pythonjsonlogger.json import JsonFormatter
        except ImportError as missing:
            raise ImportError(
                f"--log-format json needs python-json-logger ({missing}): "
                "pip install 'interchange-bus[ops]'"
            ) from missing
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        # rich imports these at a handler's first line: two threads logging their first lines
        # at once (a SIGTERM while the start thread warns) raced in that import and one failed
        import rich.containers
        import rich.table  # noqa: F401
        from rich.logging import RichHandler

        handler = RichHandler(console=out, show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("interchange").setLevel(level)


USER_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    TransportError,
    ImportError,
    PollerError,
)
"""What a user's input or setup can cause (a missing file, a bad setting, a broker down, a
missing extra, a poller's database refusing it at start): one line and exit code 2, never a
traceback."""


def main() -> None:
    from interchange.runtime import ServiceError

    try:
        app()
    except ServiceError as error:  # before USER_ERRORS: the service's bug may be a ValueError
        typer.echo(user_traceback(error.__cause__), err=True, nl=False)
        typer.echo(f"interchange: error: {error}", err=True)
        raise SystemExit(1) from None
    except USER_ERRORS as error:
        typer.echo(f"interchange: error: {one_line(error)}", err=True)
        raise SystemExit(2) from None


def user_traceback(error: BaseException | None) -> str:
    """The traceback of an error raised in a user's code, from the first frame that is not
    ours or the import machinery's down to where it was raised."""
    import importlib
    import traceback

    if error is None:
        return ""
    frames = traceback.extract_tb(error.__traceback__)
    ours = (str(Path(__file__).parent / "runtime.py"), str(importlib.__file__), "<frozen importlib")
    while len(frames) > 1 and frames[0].filename.startswith(ours):
        frames = traceback.StackSummary.from_list(frames[1:])
    head = "Traceback (most recent call last):\n"
    return "".join([head, *frames.format(), *traceback.format_exception_only(error)])


def one_line(error: Exception) -> str:
    """An error as one line: pydantic's multi-line validation report folded, secrets redacted
    (URLs in messages were redacted where they were raised)."""
    from pydantic import ValidationError

    from interchange.config import InvalidSettings

    if isinstance(error, ValidationError):  # settings built without load_settings
        return str(InvalidSettings.from_validation(error))
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"no such file: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__
