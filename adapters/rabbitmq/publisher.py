"""A publisher that streams confirms: one connection and one confirm-mode channel per transport.

Publishing follows RabbitMQ's advice: confirms are on, but we do not wait for each one. A window
of messages is published, then the broker's acks (``multiple``-aware) are drained until every
message is settled. ``mandatory`` is set on every publish but a direct reply's: RabbitMQ
returns an unroutable message (basic.return) before it acks it, so an ack for a returned
message is a rejection.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import amqp
import kombu
from amqp import spec

from interchange.adapters.errors import BackendUnavailable, PublishRejected
from interchange.adapters.rabbitmq.errors import CHANNEL_ERRORS, CONNECTION_ERRORS, mapped_errors
from interchange.adapters.rabbitmq.topology import Topology
from interchange.adapters.urls import redact

_CORK = 100
"""Publishes whose socket writes are gathered into one system call."""
_UNCORKED = contextlib.nullcontext(lambda: None)
_NACK_PAUSES = (0.05, 0.2, 0.5)
"""Waits before publishing nacked messages again; still nacked after the last: unavailable."""


@dataclass
class Publish:
    exchange: str
    routing_key: str
    message: amqp.Message
    id: str
    mandatory: bool = True
    """Have the broker return it when no queue takes it (it is then refused). Not for a
    direct reply (``amq.rabbitmq.reply-to.*``): RabbitMQ returns those even as it delivers
    them (measured)."""


@dataclass
class _Window:
    outstanding: dict[int, str] = field(default_factory=dict)
    returned: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    nacked: dict[str, str] = field(default_factory=dict)
    """The failed ones the broker nacked: worth publishing again."""


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
        queue_type: str,
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
        self.topology = Topology(queue_type)
        """What was declared on this publisher's channel (forgotten on reconnect)."""

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
        self.topology.forget()
        if connection is not None:
            # Drop the socket without the AMQP close handshake: a graceful close waits for the
            # broker's close-ok with no timeout, and behind a black hole (measured, through
            # toxiproxy) it held the publishing call for 89 s.
            with contextlib.suppress(Exception):
                connection.collect()

    def publish(self, items: Sequence[Publish]) -> None:
        """Publish and wait until the broker confirmed every item. Raises PublishRejected
        naming the refused ones (``.failed``), BackendUnavailable when the broker cannot be
        reached or no confirm comes within ``confirm_timeout`` — those may or may not be stored.

        A connection found dead (the broker restarted since the last publish) is replaced and
        the batch published once more: some messages may then arrive twice, never zero times.
        """
        with self.lock, mapped_errors(self.url, "publish"):
            state = self._publish_reconnecting(items)
            for pause in _NACK_PAUSES:
                if not state.nacked:
                    break
                # a nack says "not stored, publish again". A quorum queue that lost its leader
                # nacks until it has another, and (RabbitMQ 3.10, measured) a channel that saw
                # the old leader go keeps nacking after the election: publish on a new one.
                self.reset()
                time.sleep(pause)
                again = [item for item in items if item.id in state.nacked]
                state.failed.update(self._publish_reconnecting(again).failed)
                state.nacked = {i: why for i, why in state.failed.items() if i in state.nacked}
        if state.nacked:
            raise BackendUnavailable(
                f"RabbitMQ at {redact(self.url)} nacked {len(state.nacked)} of {len(items)} "
                f"message(s) {len(_NACK_PAUSES) + 1} times: not stored",
                failed=list(state.nacked),
            )
        if state.failed:
            raise PublishRejected(
                f"{len(state.failed)} of {len(items)} message(s) not taken by RabbitMQ: "
                + "; ".join(f"{i}: {why}" for i, why in list(state.failed.items())[:5]),
                failed=list(state.failed),
            )

    def _publish_reconnecting(self, items: Sequence[Publish]) -> _Window:
        for last_try in (False, True):
            try:
                return self._publish_once(items)
            except CHANNEL_ERRORS:
                self.reset()  # the broker closed the channel; the next call opens another
                raise
            except CONNECTION_ERRORS:
                self.reset()
                if last_try:
                    raise
        raise AssertionError("unreachable")

    def _publish_once(self, items: Sequence[Publish]) -> _Window:
        channel = self.channel
        self._state = state = _Window()
        # one message is one write already: nothing to gather
        with self._corked() if len(items) > 1 else _UNCORKED as flush:
            for count, item in enumerate(items, start=1):
                # basic_publish would also poll the socket on every call for connection.blocked
                # notices; we read the socket at every flush and ack wait instead.
                channel.send_method(
                    spec.Basic.Publish,
                    "Bssbb",
                    (0, item.exchange, item.routing_key, item.mandatory, False),
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
            self._state.nacked[message_id] = self._state.failed[message_id]

    def _on_return(self, error: Exception, exchange: str, routing_key: str, message: Any) -> None:
        message_id = message.properties.get("message_id", "?")
        where = f"exchange {exchange!r}" if exchange else f"queue {routing_key!r}"
        self._state.returned[message_id] = f"unroutable: no queue for {where} ({error})"
