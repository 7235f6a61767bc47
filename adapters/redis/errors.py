"""The one place where redis-py's exceptions become ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from interchange.adapters.errors import BackendUnavailable, PublishRejected
from interchange.adapters.urls import redact

UNREACHABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
"""Redis could not be reached, or did not answer in time."""


@contextmanager
def mapped(url: str, doing: str) -> Iterator[None]:
    """redis-py exceptions raised inside become BackendUnavailable (unreachable) or
    PublishRejected (Redis answered with an error)."""
    try:
        yield
    except UNREACHABLE as error:
        raise BackendUnavailable(
            f"Redis at {redact(url)} while trying to {doing}: {error}"
        ) from error
    except redis.RedisError as error:
        raise PublishRejected(f"Redis refused to {doing}: {error}") from error
