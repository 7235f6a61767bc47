"""What the RabbitMQ adapter needs besides its transport: the mapping between TransportMessage
and AMQP 0-9-1 messages, the queue arguments, and a publisher that streams confirms.

Publishing follows RabbitMQ's advice: confirms are on, but we do not wait for each one. A window
of messages is published, then the broker's acks (``multiple``-aware) are drained until every
message is settled. ``mandatory`` is set on every publish: RabbitMQ returns an unroutable
message (basic.return) before it acks it, so an ack for a returned message is a rejection.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:
    import amqp
    import amqp.exceptions
    import kombu
    import kombu.exceptions
    from amqp import spec
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the amqp:// backend needs kombu: pip install 'interchange-bus[kombu]'"
    ) from missing

from interchange.adapters._urls import redact
from interchange.adapters.errors import BackendUnavailable, PublishRejected
from interchange.adapters.message import Delivery, TransportMessage

CONTENT_TYPE = "content-type"
ATTEMPT = "x-interchange-attempt"
"""Transport-private header: deliveries of this message before this copy (our retries)."""
ID_HEADER = "cloudEvents_id"
_CORK = 100
"""Publishes whose socket writes are gathered into one system call."""

# Failures of the connection itself: the broker is (for now) unreachable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableConnectionError,
    kombu.exceptions.OperationalError,
)


@contextmanager
def mapped_errors(url: str, doing: str) -> Iterator[None]:
    """The one place driver exceptions become ours."""
    try:
        yield
    except (PublishRejected, BackendUnavailable):
        raise
    except amqp.exceptions.ChannelError as error:
        raise PublishRejected(f"RabbitMQ refused to {doing}: {error}") from error
    except CONNECTION_ERRORS as error:
        raise BackendUnavailable(
            f"RabbitMQ at {redact(url)} while trying to {doing}: {error}"
        ) from error


# -- topology --------------------------------------------------------------------------------


def queue_arguments(name: str, queue_type: str) -> dict[str, Any]:
    """A queue's arguments depend on its name alone, so every declarer agrees (RabbitMQ refuses
    a redeclaration with other arguments). Broker-side dead-lettering (rejects, quorum delivery
    limits) lands in ``<name>.dlq``; a dead-letter queue has none of its own."""
    arguments: dict[str, Any] = {"x-queue-type": queue_type}
    if not name.endswith(".dlq"):
        arguments["x-dead-letter-exchange"] = ""
        arguments["x-dead-letter-routing-key"] = f"{name}.dlq"
    return arguments


def delay_queue(name: str, delay: float) -> tuple[str, dict[str, Any]]:
    """A queue that holds messages ``delay`` seconds, then dead-letters them back to ``name``:
    retries with backoff without sleeping in a consumer. One queue per delay keeps TTLs equal
    within a queue, so no message waits behind a longer one; unused ones expire."""
    millis = max(1, round(delay * 1000))
    return f"{name}.delay.{millis}", {
        "x-message-ttl": millis,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": name,
        "x-expires": millis * 2 + 60_000,
    }


# -- messages --------------------------------------------------------------------------------


def to_amqp(
    message: TransportMessage, *, attempt: int = 0, correlation_id: str | None = None
) -> amqp.Message:
    headers = {k: v for k, v in message.headers.items() if k != CONTENT_TYPE}
    if attempt:
        headers[ATTEMPT] = str(attempt)
    properties: dict[str, Any] = {
        "message_id": message.id,
        "delivery_mode": 2,  # persistent
        "application_headers": headers,
        "content_type": message.headers.get(CONTENT_TYPE, "application/octet-stream"),
    }
    if message.reply_to is not None:
        properties["reply_to"] = message.reply_to
    if correlation_id is not None:
        properties["correlation_id"] = correlation_id
    return amqp.Message(message.body, **properties)


def from_amqp(raw: amqp.Message, queue: str) -> tuple[Delivery, bool]:
    """A delivery as our handlers see it, and whether it is a broker redelivery that nothing
    counted (a classic queue after a consumer died). Header values become strings (bytes
    decoded, numbers printed); nested tables such as ``x-death`` are dropped."""
    properties: Mapping[str, Any] = raw.properties
    headers: dict[str, str] = {}
    for key, value in (properties.get("application_headers") or {}).items():
        if isinstance(value, bytes):
            headers[str(key)] = value.decode("utf-8", "replace")
        elif isinstance(value, str | int | float | bool):
            headers[str(key)] = str(value)
    ours = headers.pop(ATTEMPT, "0")
    earlier = int(ours) if ours.isdigit() else 0
    if properties.get("content_type"):
        headers[CONTENT_TYPE] = str(properties["content_type"])
    body = bytes(raw.body) if not isinstance(raw.body, bytes) else raw.body
    message_id = properties.get("message_id") or headers.get(ID_HEADER)
    if not message_id:  # a legacy sender set no id: the body's hash keeps redeliveries equal
        message_id = "amqp-" + hashlib.sha256(body).hexdigest()[:32]
    reply_to = properties.get("reply_to")
    token = f"{reply_to}#{properties.get('correlation_id') or message_id}" if reply_to else None
    redelivered = bool(raw.delivery_info.get("redelivered"))
    # Quorum queues count deliveries for us; classic ones only say "redelivered".
    broker_count = headers.pop("x-delivery-count", "")
    counted = broker_count.isdigit()
    extra = int(broker_count) if counted else int(redelivered)
    delivery = Delivery(
        TransportMessage(str(message_id), body, headers, reply_to=token),
        queue,
        attempt=earlier + extra + 1,
        redelivered=redelivered or earlier > 0,
    )
    return delivery, redelivered and not counted


# -- publishing ------------------------------------------------------------------------------


@dataclass
class Publish:
    exchange: str
    routing_key: str
    message: amqp.Message
    id: str


@dataclass
class _Window:
    outstanding: dict[int, str] = field(default_factory=dict)
    returned: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class ConfirmingPublisher:
    """One connection and one confirm-mode channel, shared under a lock by every thread of a
    transport (py-amqp channels are not thread safe). Reconnects on demand."""

    def __init__(
        self,
        url: str,
        *,
        connect: Callable[[], kombu.Connection],
        window: int,
        confirm_timeout: float,
    ) -> None:
        self.url = url
        self._connect = connect
        self.window = window
        self.confirm_timeout = confirm_timeout
        self.lock = threading.RLock()
        self._connection: kombu.Connection | None = None
        self._channel: Any = None
        self._sequence = 0
        self._state = _Window()
        self.declared: set[str] = set()

    @property
    def channel(self) -> Any:
        """The confirm-mode channel, connected if need be (hold ``lock``)."""
        if self._channel is None or not getattr(self._channel, "is_open", False):
            self.reset()
            connection = self._connect()
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._connection, self._channel, self._sequence = connection, channel, 0
        return self._channel

    def reset(self) -> None:
        """Forget the connection (after an error); the next use reconnects and redeclares."""
        connection, self._connection, self._channel = self._connection, None, None
        self.declared.clear()
        if connection is not None:
            # closing a broken connection may fail too; it is gone either way
            with contextlib.suppress(Exception):
                connection.release()

    def publish(self, items: Sequence[Publish]) -> None:
        """Publish and wait until the broker confirmed every item. Raises PublishRejected
        naming the refused ones (``.failed``), BackendUnavailable when the broker cannot be
        reached or no confirm comes within ``confirm_timeout`` — those may or may not be stored.

        A connection found dead (the broker restarted since the last publish) is replaced and
        the batch published once more: some messages may then arrive twice, never zero times.
        """
        with self.lock, mapped_errors(self.url, "publish"):
            for last_try in (False, True):
                try:
                    state = self._publish_once(items)
                    break
                except amqp.exceptions.ChannelError:
                    self.reset()  # the broker closed the channel; the next call opens another
                    raise
                except CONNECTION_ERRORS:
                    self.reset()
                    if last_try:
                        raise
        if state.failed:
            raise PublishRejected(
                f"{len(state.failed)} of {len(items)} message(s) not taken by RabbitMQ: "
                + "; ".join(f"{i}: {why}" for i, why in list(state.failed.items())[:5]),
                failed=list(state.failed),
            )

    def _publish_once(self, items: Sequence[Publish]) -> _Window:
        channel = self.channel
        self._state = state = _Window()
        with self._corked() as flush:
            for count, item in enumerate(items, start=1):
                # basic_publish would also poll the socket on every call for connection.blocked
                # notices; we read the socket at every flush and ack wait instead.
                channel.send_method(
                    spec.Basic.Publish,
                    "Bssbb",
                    (0, item.exchange, item.routing_key, True, False),
                    item.message,
                )
                self._sequence += 1
                state.outstanding[self._sequence] = item.id
                if count % _CORK == 0:
                    flush()
                if len(state.outstanding) >= self.window:
                    flush()
                    self._drain(state, until=self.window // 2)
            flush()
        self._drain(state, until=0)
        return state

    @contextmanager
    def _corked(self) -> Iterator[Callable[[], None]]:
        """Gather the socket writes of up to _CORK publishes into one ``sendall``.

        py-amqp writes each message (method, header and body frames) with one call of its
        transport's ``_write``: one system call per message, the largest single cost of a
        small confirmed publish. Frames are only buffered between flushes, and ``flush`` runs
        before anything is read from the socket, so acks and returns still arrive in order.
        """
        assert self._connection is not None
        transport = self._connection.connection.transport
        write = transport._write
        pending: list[bytes] = []

        def flush() -> None:
            if pending:
                data = b"".join(pending)
                pending.clear()
                write(data)

        transport._write = lambda data: pending.append(bytes(data))
        try:
            yield flush
        finally:
            transport._write = write

    def _drain(self, state: _Window, until: int) -> None:
        assert self._connection is not None
        deadline = time.monotonic() + self.confirm_timeout
        while len(state.outstanding) > until:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.reset()
                raise BackendUnavailable(
                    f"RabbitMQ at {redact(self.url)} confirmed none of "
                    f"{len(state.outstanding)} message(s) within {self.confirm_timeout}s; "
                    "they may or may not be stored"
                )
            try:
                self._connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue

    def _settle(self, tag: int, multiple: bool) -> list[str]:
        outstanding = self._state.outstanding
        tags = [t for t in outstanding if t <= tag] if multiple else [tag]
        return [outstanding.pop(t) for t in tags if t in outstanding]

    def _on_ack(self, tag: int, multiple: bool) -> None:
        for message_id in self._settle(tag, multiple):
            if message_id in self._state.returned:
                self._state.failed[message_id] = self._state.returned.pop(message_id)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        for message_id in self._settle(tag, multiple):
            self._state.failed[message_id] = "nacked by the broker (publish again)"

    def _on_return(self, error: Exception, exchange: str, routing_key: str, message: Any) -> None:
        message_id = message.properties.get("message_id", "?")
        where = f"exchange {exchange!r}" if exchange else f"queue {routing_key!r}"
        self._state.returned[message_id] = f"unroutable: no queue for {where} ({error})"
