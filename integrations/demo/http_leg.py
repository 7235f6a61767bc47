"""The demo's HTTP leg: a legacy client that only speaks HTTP posts an order to the gateway, and
a legacy receiver gets the resulting event as a signed webhook."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console

from interchange.bus import Bus
from interchange.config import WebhookEndpoint

ORDER = {"order_id": "A-2001", "sku": "TEA-OOLONG", "quantity": 2, "unit_price_cents": 1150}


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet: the demo prints what matters."""


def legacy_over_http(
    bus: Bus, console: Console, wait: Callable[[Callable[[], bool]], bool]
) -> bool:
    """Attach a webhook and serve the gateway while the bus runs; True when the order posted over
    HTTP came back to the receiver as a verified webhook."""
    try:
        import httpx
        import uvicorn
        from standardwebhooks import Webhook

        from interchange.connectors.http import gateway
        from interchange.connectors.http.webhooks import WebhookSink
    except ImportError:
        console.print("  (skipped: the HTTP leg needs the http extra)")
        return True
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    _Receiver.got = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    sink = WebhookSink(
        WebhookEndpoint(
            name="legacy-warehouse",
            url=f"http://127.0.0.1:{receiver.server_address[1]}/hooks",
            events=["orders.order_placed"],
            secrets=[secret],
            allow_private=True,  # the demo's receiver is on this machine
        )
    )
    sink.attach(bus)
    server = uvicorn.Server(
        uvicorn.Config(gateway(bus, ["orders.place_order"]), host="127.0.0.1", port=0,
                       log_level="warning")
    )  # fmt: skip
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        if not wait(lambda: server.started):
            return False
        port = server.servers[0].sockets[0].getsockname()[1]
        with bus:
            answer = httpx.post(f"http://127.0.0.1:{port}/commands/orders.place_order", json=ORDER)
            console.print(
                f"  POST /commands/orders.place_order -> {answer.status_code} {answer.text}"
            )

            def arrived() -> bool:
                return any(json.loads(b)["order_id"] == ORDER["order_id"] for _, b in _Receiver.got)

            delivered = answer.status_code == 202 and wait(arrived)
        for headers, body in _Receiver.got:
            if json.loads(body)["order_id"] == ORDER["order_id"]:
                Webhook(secret).verify(body, headers)  # raises unless the signature holds
                console.print(
                    f"  webhook to the legacy warehouse: OrderPlaced {ORDER['order_id']} "
                    f"(webhook-id {headers['webhook-id'][:8]}..., signature verified)"
                )
        return delivered
    finally:
        server.should_exit = True
        serving.join(10)
        receiver.shutdown()
        receiver.server_close()
        sink.close()
