"""The options a redis:// URL's query may carry: ours, and redis-py's own URL options (which
redis-py reads from the URL itself). Anything else is refused. Also the impatient clients
consumers and fail-fast appends use."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from pydantic import PositiveFloat, PositiveInt
from redis.backoff import NoBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.retry import Retry

from interchange.adapters.errors import InvalidURL
from interchange.adapters.urls import Options, redact, split_options, with_query


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


_NOT_NEGATIVE = {"db", "socket_timeout", "socket_connect_timeout", "timeout"}
_NOT_NEGATIVE |= {"socket_read_size", "max_connections", "health_check_interval"}


def client_url(url: str) -> tuple[str, RedisOptions]:
    """(the URL for redis-py, with only its own options; ours). Raises InvalidURL for a db
    that is not a non-negative number and for a redis-py option's value redis-py would refuse
    only when it connects (a float that is not one, a negative timeout)."""
    bare, options, driver = split_options(url, RedisOptions, passthrough=_redis_py_option)
    db = urlsplit(bare).path.strip("/")
    if db and not (db.isascii() and db.isdigit()):
        raise InvalidURL(f"Redis db {db!r} in {redact(url)} is not a non-negative number")
    for name, value in driver.items():
        parse: Any = URL_QUERY_ARGUMENT_PARSERS.get(name)
        try:
            parsed: Any = parse(value) if parse is not None else value
        except (ValueError, TypeError):
            raise InvalidURL(f"redis:// option {name}={value!r} is not valid") from None
        if name in _NOT_NEGATIVE and parsed < 0:
            raise InvalidURL(f"redis:// option {name}={value!r} must not be negative")
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
