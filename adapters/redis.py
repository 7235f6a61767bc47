"""Redis through redis-py.

Features
    today: ``probe`` (PING plus the persistence settings, for ``interchange health``); the
    Streams backend and the fallback spool are the work of issue 6.
Connection string
    ``redis://[:password@]host:6379/0``, ``rediss://...`` for TLS.
Options
    none yet.
"""

from __future__ import annotations

from adapters._urls import redact
from adapters.errors import BackendUnavailable

try:
    import redis
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the redis:// backend needs redis: pip install 'interchange[redis]'"
    ) from missing


def probe(url: str, timeout: float = 5.0) -> str:
    """PING, then report the version and the durability the server is set to."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
    )
    try:
        client.ping()
        info = client.info("server")
        aof = client.config_get("appendonly").get("appendonly", "?")
        fsync = client.config_get("appendfsync").get("appendfsync", "?")
    except redis.RedisError as error:
        raise BackendUnavailable(f"Redis at {redact(url)}: {error}") from error
    finally:
        client.close()
    durability = f"AOF fsync {fsync}" if aof == "yes" else "no AOF (snapshots only)"
    return f"Redis {info.get('redis_version', '?')}, {durability}"
