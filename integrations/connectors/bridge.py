"""``interchange bridge``: every connector the configuration declares, in one process, on one
Bus: the HTTP gateway (``[connectors.http]``), webhook endpoints (``[[connectors.webhooks]]``)
and the outbox relay (``[connectors.outbox]``). SIGTERM or SIGINT lets requests, deliveries and
the relay's round in flight finish, then the Bus stops and closes.
"""

from __future__ import annotations

import signal
from typing import Any

from rich.console import Console

from interchange.bus import Bus
from interchange.config import Settings
from interchange.contracts_lock import load_modules
from interchange.runtime import SIGNALS, serve


class Bridged:
    """The Bus and the connectors that run beside it (relays), started and stopped together:
    relays first stop, so nothing they publish meets a closing Bus."""

    def __init__(self, bus: Bus, relays: list[Any]) -> None:
        self.bus, self.relays = bus, relays

    def start(self) -> Bridged:
        self.bus.start()
        for relay in self.relays:
            relay.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        for relay in self.relays:
            relay.stop(timeout)
        return self.bus.stop(timeout)

    def close(self) -> None:
        self.bus.close()


def _relays(settings: Settings, bus: Bus, console: Console) -> list[Any]:
    """The connectors that read a database and publish: the outbox relay, table pollers."""
    outbox, pollers = settings.connectors.outbox, settings.connectors.pollers
    if outbox is None and not pollers:
        return []
    from interchange.adapters import redact
    from interchange.connectors.sql import OutboxRelay
    from interchange.connectors.sql.poller import TablePoller

    relays: list[Any] = []
    if outbox is not None:
        console.print(f"bridge: outbox {outbox.table} at {redact(outbox.url)}")
        relays.append(
            OutboxRelay(
                bus,
                outbox.url,
                table=outbox.table,
                batch=outbox.batch,
                poll_interval=outbox.poll_interval,
                max_attempts=outbox.max_attempts,
            )
        )
    for poller in pollers:
        console.print(f"bridge: poller {poller.name}: table {poller.table} -> {poller.contract}")
        relays.append(TablePoller(bus, poller))
    return relays


def run_bridge(settings: Settings, console: Console) -> int:
    """Serve until a signal; returns the exit code."""
    http, endpoints = settings.connectors.http, settings.connectors.webhooks
    connectors = settings.connectors
    if not (http or endpoints or connectors.outbox or connectors.sql_sinks or connectors.pollers):
        raise ValueError(
            "the configuration declares no connector: add [connectors.http], "
            "[[connectors.webhooks]], [connectors.outbox], [[connectors.sql_sinks]] or "
            "[[connectors.pollers]]"
        )
    if endpoints:  # each connector imports its extra only when configured
        from interchange.connectors.http.webhooks import WebhookSink

    load_modules(settings.contract_modules)  # the contracts the connectors name
    bus = Bus(settings)
    sinks = [WebhookSink(endpoint) for endpoint in endpoints] if endpoints else []
    for sink in sinks:
        sink.attach(bus)
        console.print(f"bridge: webhook {sink.endpoint.name} -> {sink.endpoint.url}")
    if connectors.sql_sinks:
        from interchange.connectors.sql.sink import SqlSink

        for config in connectors.sql_sinks:
            SqlSink(config).attach(bus)
            console.print(f"bridge: {config.contract} -> table {config.table} ({config.name})")
    bridged = Bridged(bus, _relays(settings, bus, console))
    try:
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
        for sink in sinks:
            sink.close()
