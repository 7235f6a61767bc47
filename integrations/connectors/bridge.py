"""``interchange bridge``: every connector the configuration declares, in one process, on one
Bus. Two kinds:

- handlers the Bus calls (``attach``): webhook endpoints, SQL sinks, file sinks;
- loops that read a legacy source and publish (``start``/``stop``): the outbox relay, table
  pollers, drop folders;

plus the HTTP gateway, served by uvicorn. SIGTERM or SIGINT lets requests, deliveries and the
loops' rounds in flight finish, then the Bus stops and closes. Each connector imports its
extra only when configured.
"""

from __future__ import annotations

import signal
from typing import Any

from rich.console import Console

from interchange.adapters import redact
from interchange.bus import Bus
from interchange.config import Connectors, Settings
from interchange.contracts_lock import load_modules
from interchange.runtime import SIGNALS, serve


class Bridged:
    """The Bus and the loops that run beside it, started and stopped together: the loops
    stop first, so nothing they publish meets a closing Bus."""

    def __init__(self, bus: Bus, loops: list[Any]) -> None:
        self.bus, self.loops = bus, loops

    def start(self) -> Bridged:
        self.bus.start()
        for loop in self.loops:
            loop.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        for loop in self.loops:
            loop.stop(timeout)
        return self.bus.stop(timeout)

    def close(self) -> None:
        self.bus.close()
        for loop in self.loops:  # the outbox relay's Bus of its own (_relay_bus)
            if getattr(loop, "bus", self.bus) is not self.bus:
                loop.bus.close()


def _handlers(connectors: Connectors, bus: Bus, console: Console) -> list[Any]:
    """Attach the connectors the Bus calls; returns those to close at the end."""
    closing: list[Any] = []
    if connectors.webhooks:
        from interchange.connectors.http.webhooks import WebhookSink

        for endpoint in connectors.webhooks:
            sink = WebhookSink(endpoint)
            sink.attach(bus)
            closing.append(sink)
            console.print(f"bridge: webhook {endpoint.name} -> {endpoint.url}")
    if connectors.sql_sinks:
        from interchange.connectors.sql.sink import SqlSink

        for table in connectors.sql_sinks:
            SqlSink(table).attach(bus)
            console.print(f"bridge: {table.contract} -> table {table.table} ({table.name})")
    if connectors.file_sinks:
        from interchange.connectors.folders.writer import FileSink

        for files in connectors.file_sinks:
            writer = FileSink(files)
            writer.attach(bus)
            closing.append(writer)
            console.print(f"bridge: {files.contract} -> files in {files.path}")
    return closing


def _relay_bus(settings: Settings) -> Bus:
    """The outbox relay's Bus: the same settings without ``backends.fallback``. The outbox
    table is already the relay's durable store: while a broker is down its rows stay unsent,
    in commit order, and are tried again. Spooled, a row would be marked sent before any
    broker had it, overtaken by its aggregate's later rows another relay publishes directly,
    and never counted as refused (an oversized row would not be parked)."""
    backends = settings.backends.model_copy(update={"fallback": None})
    return Bus(settings.model_copy(update={"backends": backends}))


def _loops(connectors: Connectors, bus: Bus, console: Console) -> list[Any]:
    """The connectors that read a legacy source and publish."""
    loops: list[Any] = []
    outbox = connectors.outbox
    if outbox is not None:
        from interchange.connectors.sql import OutboxRelay

        console.print(f"bridge: outbox {outbox.table} at {redact(outbox.url)}")
        loops.append(
            OutboxRelay(
                _relay_bus(bus.settings) if bus.settings.backends.fallback else bus,
                outbox.url,
                table=outbox.table,
                batch=outbox.batch,
                poll_interval=outbox.poll_interval,
                max_attempts=outbox.max_attempts,
                retention_hours=outbox.retention_hours or None,  # 0: keep sent rows
            )
        )
    if connectors.pollers:
        from interchange.connectors.sql.poller import TablePoller

        for poller in connectors.pollers:
            console.print(f"bridge: poller {poller.name}: {poller.table} -> {poller.contract}")
            loops.append(TablePoller(bus, poller))
    if connectors.drop_folders:
        from interchange.connectors.folders import DropFolder

        for folder in connectors.drop_folders:
            console.print(f"bridge: drop folder {folder.path} -> {folder.contract}")
            loops.append(DropFolder(bus, folder))
    return loops


def run_bridge(
    settings: Settings, console: Console, ops: tuple[int | None, str] = (None, "127.0.0.1")
) -> int:
    """Serve until a signal; returns the exit code. ``ops``: (port, host) of the ops port, if
    one is wanted."""
    connectors = settings.connectors
    connectors.check_complete()  # a section given only in part (say, from the environment)
    if not any(getattr(connectors, name) for name in Connectors.model_fields):
        names = ", ".join(f"connectors.{name}" for name in Connectors.model_fields)
        raise ValueError(f"the configuration declares no connector: add one of {names}")
    load_modules(settings.contract_modules)  # the contracts the connectors name
    bus = Bus(settings)
    ops_port, ops_host = ops
    if ops_port is not None:
        from interchange.ops import serve_ops

        console.print(f"bridge: ops on {serve_ops(bus, ops_port, ops_host).url}/metrics")
    closing = _handlers(connectors, bus, console)
    bridged = Bridged(bus, _loops(connectors, bus, console))
    try:
        http = connectors.http
        if http is None:
            return 0 if serve(bridged) else 1
        import uvicorn

        from interchange.connectors.http import gateway

        app = gateway(
            bus,
            http.expose,
            api_keys=http.api_keys,
            webhook_secrets=http.webhook_secrets,
            max_body_bytes=http.max_body_bytes,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=http.host, port=http.port, log_level="warning")
        )
        console.print(f"bridge: HTTP gateway on http://{http.host}:{http.port}")
        # uvicorn re-raises the signal it stopped on once it is done; with our own handler in
        # place, that ends here instead of killing the process before the Bus is closed
        received: list[int] = []
        previous = {n: signal.signal(n, lambda n, _: received.append(n)) for n in SIGNALS}
        try:
            bridged.start()
            server.run()  # returns after SIGTERM/SIGINT once in-flight requests finished
        finally:
            bridged.stop()
            bridged.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
        return 0
    finally:
        for item in closing:
            item.close()
