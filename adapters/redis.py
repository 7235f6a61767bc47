"""Redis through redis-py.

Features
    ``probe`` (PING plus the persistence settings, for ``interchange health``);
    ``RedisDedupeStore``: handled message ids shared by every consumer process, with a TTL.
    The Streams backend and the fallback spool are the work of issue 6.
Connection string
    ``redis://[:password@]host:6379/0``, ``rediss://...`` for TLS.
Options
    none yet.
"""

from __future__ import annotations

import re
from typing import Any

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


class RedisDedupeStore:
    """Dedupe store shared by every process that points at the same Redis: a consumer that
    replaces a killed one sees what the killed one already handled.

    Keys live under ``<namespace>:<scope>|<message id>`` with the store's TTL. A Redis that
    cannot be reached raises BackendUnavailable: the consumer then retries the delivery later
    rather than risk handling it twice or dropping it.
    """

    def __init__(
        self, url: str, *, ttl: float = 3600.0, namespace: str = "interchange:seen"
    ) -> None:
        self.url = url
        self.ttl_ms = max(1, int(ttl * 1000))
        self.namespace = namespace
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def seen(self, key: str) -> bool:
        try:
            return bool(self.client.exists(self._key(key)))
        except redis.RedisError as error:
            raise BackendUnavailable(f"dedupe store at {redact(self.url)}: {error}") from error

    def remember(self, key: str) -> None:
        try:
            self.client.set(self._key(key), b"1", px=self.ttl_ms)
        except redis.RedisError as error:
            raise BackendUnavailable(f"dedupe store at {redact(self.url)}: {error}") from error

    def remember_in(self, transaction: Any, key: str) -> None:
        """Queue ``remember(key)`` on a redis-py pipeline (``transaction=True``), so the record
        commits atomically with the handler's own writes to this Redis."""
        transaction.set(self._key(key), b"1", px=self.ttl_ms)

    def forget(self, scope: str) -> None:
        # glob-escape the scope: channel names may hold *, ?, [ or ]
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._key(scope)) + "|*"
        try:
            batch = []
            for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self.client.delete(*batch)
                    batch.clear()
            if batch:
                self.client.delete(*batch)
        except redis.RedisError as error:
            raise BackendUnavailable(f"dedupe store at {redact(self.url)}: {error}") from error
