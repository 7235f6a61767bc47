"""Legacy systems over HTTP: the gateway turns their calls into commands and events.

    from interchange.connectors.http import gateway
    app = gateway(bus, expose=["orders.place_order"], api_keys={"shop": "..."})

Needs the ``http`` extra: ``pip install 'interchange-bus[http]'``.
"""

from __future__ import annotations

try:
    import defusedxml  # noqa: F401
    import fastapi  # noqa: F401
    import standardwebhooks  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"the HTTP connectors need their extra ({missing}): pip install 'interchange-bus[http]'"
    ) from missing

from interchange.connectors.http.gateway import gateway
from interchange.connectors.http.idempotency import IdempotencyStore

__all__ = ["IdempotencyStore", "gateway"]
