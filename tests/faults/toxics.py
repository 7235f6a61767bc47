"""A small client for toxiproxy's HTTP API (compose/native/up starts it with a proxy named
rabbitmq, redis and kafka in front of each broker): enough to add and remove toxics."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


@dataclass
class Proxy:
    api: str
    name: str
    listen: str  # host:port clients connect to

    def toxic(self, kind: str, stream: str = "downstream", **attributes: Any) -> str:
        """Add a toxic (latency, timeout, reset_peer, limit_data, ...) to every connection,
        new and open; returns its name."""
        name = f"{kind}_{stream}"
        body = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        _call("POST", f"{self.api}/proxies/{self.name}/toxics", body)
        return name

    def heal(self) -> None:
        """Remove every toxic."""
        for toxic in _call("GET", f"{self.api}/proxies/{self.name}/toxics"):
            _call("DELETE", f"{self.api}/proxies/{self.name}/toxics/{toxic['name']}")

    def behind(self, url: str) -> str:
        """``url`` (a broker's) pointed at this proxy instead: same scheme, credentials, path."""
        parts = urlsplit(url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        host, port = self.listen.rsplit(":", 1)
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # a container listens on all
        return urlunsplit(parts._replace(netloc=f"{credentials}{host}:{port}"))


class Toxiproxy:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def proxy(self, name: str) -> Proxy:
        found = _call("GET", f"{self.url}/proxies/{name}")
        return Proxy(self.url, name, found["listen"])

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        _call("POST", f"{self.url}/reset")
