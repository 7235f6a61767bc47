"""The one place where confluent-kafka's exceptions and delivery errors become ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from interchange.adapters.errors import (
    AccessRefused,
    BackendUnavailable,
    PublishRejected,
    TransportError,
)

UNREACHED = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._PURGE_QUEUE,  # withdrawn when a publish gave up failing fast: never sent
}
"""Errors after which the broker may simply not have been reachable in time."""


REFUSED = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
"""The cluster answered and refused the client's SASL credentials: a wrong setting. (A topic
the user may not write, TOPIC_AUTHORIZATION_FAILED, stays a PublishRejected of that record.)"""


def code(error: Any) -> Any:
    """The KafkaError code of a KafkaException, a KafkaError, or None."""
    if isinstance(error, KafkaException) and error.args:
        error = error.args[0]
    return error.code() if isinstance(error, KafkaError) else None


@contextmanager
def mapped_errors(servers: str, doing: str) -> Iterator[None]:
    """KafkaException raised inside becomes BackendUnavailable (not reached in time) or
    PublishRejected (the cluster refused); an admin future that did not resolve in time
    (TimeoutError: a cluster without its controller quorum answers metadata but creates
    nothing) becomes BackendUnavailable too."""
    try:
        yield
    except TransportError:
        raise
    except TimeoutError as error:
        raise BackendUnavailable(
            f"Kafka at {servers} did not answer in time while trying to {doing}"
        ) from error
    except KafkaException as error:
        if code(error) in REFUSED:
            raise AccessRefused(
                f"Kafka at {servers} refused the credentials while trying to {doing}: {error}"
            ) from error
        if code(error) in UNREACHED:
            raise BackendUnavailable(
                f"Kafka at {servers} while trying to {doing}: {error}"
            ) from error
        raise PublishRejected(f"Kafka refused to {doing}: {error}") from error


def delivery_failure(topic: str, total: int, errors: dict[str, Any]) -> TransportError:
    """The error for a batch whose delivery reports carried ``errors`` (id → KafkaError)."""
    unreached = all(e.code() in UNREACHED for e in errors.values())
    kind = BackendUnavailable if unreached else PublishRejected
    return kind(
        f"{len(errors)} of {total} message(s) to {topic!r} failed: "
        + "; ".join(f"{i}: {e.str()}" for i, e in list(errors.items())[:5]),
        failed=list(errors),
    )


def produce_failure(
    topic: str, servers: str, refused_id: str, error: KafkaException, failed: list[str]
) -> TransportError:
    """The error for ``produce()`` raising before a record left the client (too large for
    ``message.max.bytes``, an unknown partition, ...): PublishRejected with the reason, unless
    the code says the cluster was not reached. ``failed``: that record and every later one of
    the batch, never produced."""
    kind = BackendUnavailable if code(error) in UNREACHED else PublishRejected
    return kind(
        f"Kafka at {servers} refused message {refused_id} to {topic!r} before sending it: {error}",
        failed=failed,
    )
