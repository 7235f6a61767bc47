"""The options a redis:// URL's query may carry: ours, and redis-py's own URL options (which
redis-py reads from the URL itself). Anything else is refused. Also the impatient clients
consumers and fail-fast appends use."""

from __future__ import annotations

from typing import Any

import redis
from pydantic import PositiveFloat, PositiveInt
from redis.backoff import NoBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry

from interchange.adapters.urls import Options, split_options, with_query


class RedisOptions(Options):
    claim_idle: PositiveFloat = 30.0
    """Seconds an entry stays pending before another consumer takes it over; an event group
    member that finishes no entry that long while it has some in hand gives up the lease."""
    lease_ttl: PositiveFloat = 10.0
    """Seconds an event group's lease outlives its holder's last renewal: how long the group
    waits for a member that died before another takes over."""
    partitions: PositiveInt = 1
    """Streams per event topic: a group's members read that many at once, each key in order;
    keep it the same for every process of a topic (it decides which stream a key goes to)."""
    maxlen: PositiveInt | None = None
    """Trim event streams to this many entries (never past what a group still needs)."""
    retention_ms: PositiveInt | None = None
    """Trim event entries older than this (never past what a group still needs)."""


def _redis_py_option(name: str) -> bool:
    return name in URL_QUERY_ARGUMENT_PARSERS or name.startswith("ssl_")


def client_url(url: str) -> tuple[str, RedisOptions]:
    """(the URL for redis-py, with only its own options; ours)."""
    bare, options, driver = split_options(url, RedisOptions, passthrough=_redis_py_option)
    return with_query(bare, driver), options


def impatient_client(url: str, timeout: float, *, connect_timeout: float) -> Any:
    """A client whose calls end within ``timeout`` and are never retried (redis-py retries a
    timed-out command three times by default)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=15,
    )
