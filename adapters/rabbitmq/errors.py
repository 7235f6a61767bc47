"""The one place where py-amqp's and kombu's exceptions become ours."""

from __future__ import annotations

from typing import Any

import amqp.exceptions
import kombu.exceptions

from interchange.adapters.errors import AccessRefused, BackendUnavailable, PublishRejected
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


def refused(error: BaseException) -> bool:
    """RabbitMQ answered and refused the URL's credentials (403 ACCESS_REFUSED, at login or on
    a resource the user may not use) or its virtual host (530 NOT_ALLOWED "vhost ... not
    found" / "access to vhost ... refused"): a wrong setting, retrying gives the same answer."""
    if isinstance(error, amqp.exceptions.AccessRefused):
        return True
    return isinstance(error, amqp.exceptions.NotAllowed) and "vhost" in str(error).lower()


class mapped_errors:  # noqa: N801 - used like the function it was: ``with mapped_errors(...)``
    """Driver exceptions raised inside become AccessRefused (credentials or virtual host
    refused), PublishRejected (the broker refused) or BackendUnavailable (it could not be
    reached). A class, not a generator: it wraps every
    publish, and entering a generator's context cost ~4 µs of a confirmed send."""

    __slots__ = ("doing", "url")

    def __init__(self, url: str, doing: str) -> None:
        self.url, self.doing = url, doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: Any
    ) -> None:
        if error is None or isinstance(error, PublishRejected | BackendUnavailable):
            return  # nothing raised, or already ours: it goes on as it is
        if refused(error):
            raise AccessRefused(
                f"RabbitMQ at {redact(self.url)} refused the credentials or virtual host "
                f"while trying to {self.doing}: {error}"
            ) from error
        if isinstance(error, CHANNEL_ERRORS):
            raise PublishRejected(f"RabbitMQ refused to {self.doing}: {error}") from error
        if isinstance(error, CONNECTION_ERRORS):
            raise BackendUnavailable(
                f"RabbitMQ at {redact(self.url)} while trying to {self.doing}: {error}"
            ) from error
