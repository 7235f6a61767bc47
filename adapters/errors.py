"""Errors raised by transports. Each adapter maps its driver's exceptions onto these, in one
place, so callers never catch ``amqp.exceptions`` or ``KafkaException``.

    TransportError
    ├── BackendUnavailable   the broker cannot be reached (connect failed, connection lost,
    │                        circuit open with no fallback); nothing was stored
    ├── PublishRejected      the broker answered but did not take the message (nack,
    │                        unroutable / no queue bound, reply target gone)
    └── RequestTimeout       no reply arrived within the request's timeout

    ConfigurationError       a wrong setting: retrying cannot help (also a ValueError)
    ├── UnknownBackend       a URL scheme no adapter serves
    ├── InvalidURL           an option the backend does not know, or a value it cannot take
    └── AccessRefused        the broker answered and refused these credentials or this
                             virtual host (RabbitMQ ACCESS_REFUSED / NOT_ALLOWED, Redis
                             WRONGPASS / NOAUTH, Kafka SASL authentication)

A configuration error is not a TransportError: code that retries on transport errors (a broker
that may come back) must not retry a typo.
"""

from __future__ import annotations


class TransportError(Exception):
    """Base of every error raised by a transport. ``failed`` lists the ids of the messages of a
    batch that were not stored, when the error is about a batch."""

    def __init__(self, *args: object, failed: list[str] | None = None) -> None:
        super().__init__(*args)
        self.failed: list[str] = failed or []


class BackendUnavailable(TransportError):
    """The backend could not be reached; the message was not stored."""


class PublishRejected(TransportError):
    """The backend was reached but refused or could not route the message."""


class RequestTimeout(TransportError):
    """A request got no reply in time. A reply arriving later is discarded."""


class ConfigurationError(ValueError):
    """A setting is wrong (a URL, an option, a value): nothing was attempted, and trying again
    gives the same answer. Its message names what is wrong; secrets in URLs are redacted."""


class UnknownBackend(ConfigurationError):
    """No adapter serves this URL scheme."""


class InvalidURL(ConfigurationError):
    """A backend URL names an option its backend does not know, or a value it cannot take."""


class AccessRefused(ConfigurationError):
    """The broker answered and refused the URL's credentials or virtual host. A wrong setting,
    not an outage: a broker coming back gives the same answer, so nothing retries it."""
