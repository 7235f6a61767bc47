"""The one place where py-amqp's and kombu's exceptions become ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import amqp.exceptions
import kombu.exceptions

from interchange.adapters.errors import BackendUnavailable, PublishRejected
from interchange.adapters.urls import redact

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableConnectionError,
    kombu.exceptions.OperationalError,
)
"""Failures of the connection itself: the broker is (for now) unreachable."""

CHANNEL_ERRORS: tuple[type[BaseException], ...] = (amqp.exceptions.ChannelError,)
"""The broker closed the channel: it refused what was asked on it."""


@contextmanager
def mapped_errors(url: str, doing: str) -> Iterator[None]:
    """Driver exceptions raised inside become PublishRejected (the broker refused) or
    BackendUnavailable (it could not be reached)."""
    try:
        yield
    except (PublishRejected, BackendUnavailable):
        raise
    except CHANNEL_ERRORS as error:
        raise PublishRejected(f"RabbitMQ refused to {doing}: {error}") from error
    except CONNECTION_ERRORS as error:
        raise BackendUnavailable(
            f"RabbitMQ at {redact(url)} while trying to {doing}: {error}"
        ) from error
