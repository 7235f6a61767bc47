"""Small helpers for broker URLs: where they point, and how to show them without secrets."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "kafka": 9092, "redis": 6379, "rediss": 6379}


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to log or print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def endpoints(url: str) -> list[tuple[str, int]]:
    """(host, port) pairs a URL names; ``kafka://a:9092,b:9092`` names several."""
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme, 0)
    found = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        if item.startswith("["):  # [::1]:9092
            host, _, port = item[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = item.partition(":")
        found.append((host, int(port) if port else default))
    return found
