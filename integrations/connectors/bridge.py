"""``interchange bridge``: every connector the configuration declares, in one process, on one
Bus: the HTTP gateway (``[connectors.http]``) and webhook endpoints (``[[connectors.webhooks]]``).
SIGTERM or SIGINT lets requests and deliveries in flight finish, then the Bus stops and closes.
"""

from __future__ import annotations

import signal

from rich.console import Console

from interchange.bus import Bus
from interchange.config import Settings
from interchange.contracts_lock import load_modules
from interchange.runtime import SIGNALS, serve


def run_bridge(settings: Settings, console: Console) -> int:
    """Serve until a signal; returns the exit code."""
    http, endpoints = settings.connectors.http, settings.connectors.webhooks
    if http is None and not endpoints:
        raise ValueError(
            "the configuration declares no connector: add [connectors.http] or "
            "[[connectors.webhooks]]"
        )
    from interchange.connectors.http import gateway
    from interchange.connectors.http.webhooks import WebhookSink

    load_modules(settings.contract_modules)  # the contracts the connectors name
    bus = Bus(settings)
    sinks = [WebhookSink(endpoint) for endpoint in endpoints]
    for sink in sinks:
        sink.attach(bus)
        console.print(f"bridge: webhook {sink.endpoint.name} -> {sink.endpoint.url}")
    try:
        if http is None:
            return 0 if serve(bus) else 1
        import uvicorn

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
            bus.start()
            server.run()  # returns after SIGTERM/SIGINT once in-flight requests finished
        finally:
            bus.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
        return 0
    finally:
        for sink in sinks:
            sink.close()
