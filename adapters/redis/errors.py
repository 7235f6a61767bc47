"""The one place where redis-py's exceptions become ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from interchange.adapters.errors import AccessRefused, BackendUnavailable, PublishRejected
from interchange.adapters.urls import redact

REFUSED: tuple[type[BaseException], ...] = (
    redis.AuthenticationError,  # WRONGPASS, NOAUTH, a password for a Redis that has none
    redis.exceptions.AuthenticationWrongNumberOfArgsError,
    redis.exceptions.NoPermissionError,  # NOPERM: the ACL user may not run this command
)
"""Redis answered and refused the URL's credentials: a wrong setting, not an outage (redis-py's
AuthenticationError is a ConnectionError, so this is looked at first)."""

UNREACHABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
"""Redis could not be reached, or did not answer in time."""


@contextmanager
def mapped(url: str, doing: str) -> Iterator[None]:
    """redis-py exceptions raised inside become AccessRefused (credentials refused),
    BackendUnavailable (unreachable) or PublishRejected (Redis answered with an error)."""
    try:
        yield
    except REFUSED as error:
        raise AccessRefused(
            f"Redis at {redact(url)} refused the credentials while trying to {doing}: {error}"
        ) from error
    except UNREACHABLE as error:
        raise BackendUnavailable(
            f"Redis at {redact(url)} while trying to {doing}: {error}"
        ) from error
    except redis.RedisError as error:
        raise PublishRejected(f"Redis refused to {doing}: {error}") from error
