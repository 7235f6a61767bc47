"""The threads of the RabbitMQ adapter: each owns a connection, consumes on it, and reconnects
with backoff.

``Consumer`` hands deliveries to a handler and settles them after it answered: ack, a retry
copy in a delay queue, or a dead letter (both confirmed before the original is acked); a broker
redelivery nobody counted is re-enqueued as a counted copy.

Both are given what they need (``Links``), never the transport.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kombu

from interchange.adapters.errors import TransportError
from interchange.adapters.lifecycle import (
    Abandonable,
    Backoff,
    ConsumerThread,
    OnThread,
    run_handler,
)
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Retry,
    dead_letter_headers,
)
from interchange.adapters.rabbitmq.errors import CHANNEL_ERRORS, CONNECTION_ERRORS
from interchange.adapters.rabbitmq.topology import Topology
from interchange.adapters.rabbitmq.wire import from_amqp
from interchange.adapters.urls import redact

log = logging.getLogger("interchange.adapters.rabbitmq")


_CLOSE_WITHIN = 1.0
"""Seconds a consumer's connection close waits for the broker's close-ok."""


def _drop(opened: tuple[kombu.Connection, Any]) -> None:
    opened[0].collect()


_delivering = threading.local()
"""The channel a consumer thread is handling a delivery from, while its handler runs."""


def on_channel() -> Any | None:
    """The channel of the delivery this thread is handling, or None outside a handler. Only
    this thread uses it: a handler's direct reply is written on it, without a confirm."""
    return getattr(_delivering, "channel", None)


@dataclass(frozen=True)
class Links:
    """What a consumer thread needs from its transport."""

    url: str
    connect: Callable[[], kombu.Connection]
    """A new connection, retried with backoff up to the transport's connect timeout."""
    queue_type: str
    republish: Callable[[Delivery, str, dict[str, str] | None, int], None]
    """Publish a delivered message again, confirmed: (delivery, queue, headers, attempt)."""
    delay_queue: Callable[[str, float], str]
    """Declare the delay queue of (queue, seconds); return its name."""
    declare: Callable[[str], None]
    """Declare a plain queue (a dead-letter queue)."""


class Connected(OnThread):
    """A thread that owns one connection and consumes on it; reconnects with backoff."""

    def __init__(self, links: Links, name: str) -> None:
        self.links = links
        self.connection: kombu.Connection | None = None
        self.channel: Any = None
        self._backoff = Backoff()
        self._name = name  # the loop may run before self.thread is assigned
        self.thread = ConsumerThread(name, self._step, on_exit=self._flush_on_exit)

    def setup(self, channel: Any) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Send what is owed the broker (acknowledgements); on the consumer's thread. Errors
        propagate like any other on the channel: the loop then reconnects."""

    def _flush_on_exit(self) -> None:
        # the loop ended: a connection lost now gives the owed messages out again anyway
        with contextlib.suppress(*CONNECTION_ERRORS, *CHANNEL_ERRORS):
            self.flush()

    def _pending(self) -> bool:
        return False

    def _open(self) -> tuple[kombu.Connection, Any]:
        connection = self.links.connect()
        try:
            channel = connection.channel()
            self.setup(channel)
        except BaseException:
            with contextlib.suppress(Exception):
                connection.collect()
            raise
        return connection, channel

    def _step(self, stop: threading.Event) -> None:
        try:
            if self.channel is None:
                # Connecting retries for up to connect_timeout (10 s), and one attempt against a
                # black hole waits all of it: on a thread of its own, so a stop is answered
                # meanwhile (it held SIGTERM past the grace period, with no handler running).
                opening = Abandonable(f"{self._name}-connect", self._open, _drop)
                opened = opening.result(stop)
                if opened is None:
                    return  # stopping; the connection, if one comes, is dropped
                self.connection, self.channel = opened
                self._backoff.reset()
            try:
                # owing acks, look again soon: they go out once nothing more arrives
                timeout = 0.05 if self._pending() else 0.5
                self.connection.drain_events(timeout=timeout)  # type: ignore[union-attr]
            except TimeoutError:
                self.flush()
                self.connection.heartbeat_check()  # type: ignore[union-attr]
        except (*CONNECTION_ERRORS, *CHANNEL_ERRORS) as error:
            log.warning(
                "%s lost its connection to %s: %s; reconnecting in %.1fs",
                self._name,
                redact(self.links.url),
                error,
                self._backoff.next,
            )
            self._release(graceful=False)
            self._backoff.wait(stop)

    def _release(self, graceful: bool = True) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is None:
            return
        if graceful:
            # The close handshake waits for the broker's close-ok with no timeout of its own (a
            # black hole held it for minutes, and a SIGTERM with it): a second, then dropped.
            with contextlib.suppress(Exception):
                connection._connection.transport.sock.settimeout(_CLOSE_WITHIN)  # no connect
                connection.release()
                return
        # a broken connection is dropped without the handshake
        with contextlib.suppress(Exception):
            connection.collect()

    def stop(self) -> None:
        self.thread.stop()

    def close(self, timeout: float = 10.0) -> None:
        self.thread.close(timeout)
        self._release()


class Consumer(Connected):
    def __init__(
        self,
        links: Links,
        queue: str,
        exchange: str | None,
        handler: DeliveryHandler,
        prefetch: int,
        ack_every: int = 1,
    ) -> None:
        self.queue, self.exchange, self.handler, self.prefetch = queue, exchange, handler, prefetch
        # Acknowledge every few messages at once (multiple=True): one ack frame per message
        # (a write, and py-amqp resetting the socket timeout around it) held consumption to
        # ~5.8k/s where a raw consumer reads ~11k/s (measured). Acks owed go out when this
        # many are owed (never more than a quarter of the prefetch, so the broker keeps
        # sending), when nothing arrived for 50 ms, and before the loop ends.
        self._ack_every = max(1, min(ack_every, prefetch // 4))
        self._owed_tag: int | None = None
        self._owed = 0
        super().__init__(links, f"amqp-consume-{queue}")

    def setup(self, channel: Any) -> None:
        self._owed_tag, self._owed = None, 0  # delivery tags belong to the channel they came on
        Topology(self.links.queue_type).queue(channel, self.queue, self.exchange)
        channel.basic_qos(0, self.prefetch, False)
        channel.basic_consume(self.queue, callback=self._on_message, no_ack=False)

    def _pending(self) -> bool:
        return self._owed > 0

    def flush(self) -> None:
        if self._owed_tag is None or self.channel is None:
            return
        tag, self._owed_tag, self._owed = self._owed_tag, None, 0
        # A refusal (e.g. a quorum queue whose leader moved no longer knows the tag) closes
        # the channel: it must reach the loop, which reconnects; swallowed, the consumer sat on
        # a closed channel and took nothing more (the cluster test caught it).
        self.channel.basic_ack(tag, multiple=True)

    def _ack(self, tag: int) -> None:
        """This delivery and every earlier one on the channel are settled (those not acked
        were rejected at once): acknowledge them together, soon."""
        self._owed_tag, self._owed = tag, self._owed + 1
        if self._owed >= self._ack_every:
            self.flush()

    def _on_message(self, raw: Any) -> None:
        if self.thread.stopping.is_set():
            # Stopping: take nothing more. py-amqp still dispatches deliveries it reads while
            # the connection closes; handled then, their acks would be lost and the messages
            # handled twice. Left unacknowledged, the broker gives them to another consumer.
            return
        delivery, uncounted = from_amqp(raw, self.queue)
        tag = raw.delivery_info["delivery_tag"]
        channel = raw.channel
        if uncounted:
            # A classic queue says only "redelivered": a consumer died holding this message.
            # Re-enqueue a copy that counts that delivery, so a message that kills its
            # consumers reaches max_attempts and the dead-letter queue instead of looping.
            try:
                self.links.republish(delivery, self.queue, None, delivery.attempt - 1)
            except TransportError as error:
                log.error("could not count redelivery of %s: %s", delivery.message.id, error)
                channel.basic_reject(tag, requeue=True)
                return
            channel.basic_ack(tag)
            return
        _delivering.channel = channel  # a direct reply goes out on it (on_channel)
        try:
            outcome = run_handler(self.handler, delivery)
        finally:
            _delivering.channel = None
        try:
            if isinstance(outcome, Retry):
                delay = self.links.delay_queue(self.queue, outcome.delay)
                self.links.republish(delivery, delay, None, delivery.attempt)
            elif isinstance(outcome, DeadLetter):
                self.links.declare(f"{self.queue}.dlq")
                self.links.republish(
                    delivery, f"{self.queue}.dlq", dead_letter_headers(delivery, outcome), 0
                )
            else:
                assert isinstance(outcome, Ack)
        except TransportError as error:
            # The copy was not stored: leave the original with the broker. A dead letter is
            # then rejected into <queue>.dlq by the broker itself (without our reason headers).
            log.error("could not park %s from %s: %s", delivery.message.id, self.queue, error)
            channel.basic_reject(tag, requeue=not isinstance(outcome, DeadLetter))
            return
        self._ack(tag)
