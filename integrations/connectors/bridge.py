"""``interchange bridge``: every connector the configuration declares, in one process, on one
Bus. SIGTERM or SIGINT lets requests in flight finish (uvicorn's graceful shutdown), then the
Bus stops and closes."""

from __future__ import annotations

import signal

from rich.console import Console

from interchange.bus import Bus
from interchange.config import Settings
from interchange.contracts_lock import load_modules
from interchange.runtime import SIGNALS


def run_bridge(settings: Settings, console: Console) -> int:
    """Serve until a signal; returns the exit code."""
    http = settings.connectors.http
    if http is None:
        raise ValueError("the configuration declares no connector: add [connectors.http]")
    import uvicorn

    from interchange.connectors.http import gateway

    load_modules(settings.contract_modules)  # the contracts the connectors expose
    bus = Bus(settings)
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
    console.print(
        f"bridge: HTTP gateway on http://{http.host}:{http.port} ({len(http.expose)} contracts)"
    )
    # uvicorn re-raises the signal it stopped on once it is done; with our own handler in
    # place, that ends here instead of killing the process before the Bus is closed
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda n, _: received.append(n)) for number in SIGNALS
    }
    try:
        bus.start()
        server.run()  # returns after SIGTERM/SIGINT once in-flight requests finished
    finally:
        bus.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
