"""The threads of the RabbitMQ adapter: each owns a connection, consumes on it, and reconnects
with backoff (used by adapters.rabbitmq).

``Consumer`` hands deliveries to a handler and settles them after it answered: ack, a retry
copy in a delay queue, or a dead letter (both confirmed before the original is acked); a broker
redelivery nobody counted is re-enqueued as a counted copy. ``ReplyListener`` consumes a
transport's exclusive reply queue and hands replies to the requests waiting for them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

import amqp.exceptions

from interchange.adapters._amqp import CONNECTION_ERRORS, from_amqp
from interchange.adapters._threads import ConsumerThread, run_handler
from interchange.adapters._urls import redact
from interchange.adapters.errors import BackendUnavailable, TransportError
from interchange.adapters.message import (
    Ack,
    DeadLetter,
    DeliveryHandler,
    Retry,
    TransportMessage,
    dead_letter_headers,
)

if TYPE_CHECKING:
    import kombu

    from interchange.adapters.rabbitmq import RabbitMQCommandTransport

log = logging.getLogger("interchange.adapters.rabbitmq")


class Connected:
    """A thread that owns one connection and consumes on it; reconnects with backoff."""

    def __init__(self, transport: RabbitMQCommandTransport, name: str) -> None:
        self.transport = transport
        self.connection: kombu.Connection | None = None
        self.channel: Any = None
        self._backoff = 0.2
        self.thread = ConsumerThread(name, self._step)

    def setup(self, channel: Any) -> None:
        raise NotImplementedError

    def _step(self, stop: threading.Event) -> None:
        try:
            if self.channel is None:
                self.connection = self.transport.connect()
                self.channel = self.connection.channel()
                self.setup(self.channel)
                self._backoff = 0.2
            try:
                self.connection.drain_events(timeout=0.5)  # type: ignore[union-attr]
            except TimeoutError:
                self.connection.heartbeat_check()  # type: ignore[union-attr]
        except (*CONNECTION_ERRORS, amqp.exceptions.ChannelError) as error:
            log.warning(
                "%s lost its connection to %s: %s; reconnecting in %.1fs",
                self.thread.name,
                redact(self.transport.url),
                error,
                self._backoff,
            )
            self._release()
            stop.wait(self._backoff)
            self._backoff = min(self._backoff * 2, 5.0)

    def _release(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            # already broken; nothing more to release
            with contextlib.suppress(Exception):
                connection.release()

    def stop(self) -> None:
        self.thread.stopping.set()

    def close(self, timeout: float = 10.0) -> None:
        self.thread.close(timeout)
        self._release()


class Consumer(Connected):
    def __init__(
        self,
        transport: RabbitMQCommandTransport,
        queue: str,
        exchange: str | None,
        handler: DeliveryHandler,
        prefetch: int,
    ) -> None:
        self.queue, self.exchange, self.handler, self.prefetch = queue, exchange, handler, prefetch
        super().__init__(transport, f"amqp-consume-{queue}")

    def setup(self, channel: Any) -> None:
        self.transport.declare_on(channel, self.queue, self.exchange)
        channel.basic_qos(0, self.prefetch, False)
        channel.basic_consume(self.queue, callback=self._on_message, no_ack=False)

    def _on_message(self, raw: Any) -> None:
        delivery, uncounted = from_amqp(raw, self.queue)
        tag = raw.delivery_info["delivery_tag"]
        channel = raw.channel
        if uncounted:
            # A classic queue says only "redelivered": a consumer died holding this message.
            # Re-enqueue a copy that counts that delivery, so a message that kills its
            # consumers reaches max_attempts and the dead-letter queue instead of looping.
            try:
                self.transport.republish(delivery, self.queue, attempt=delivery.attempt - 1)
            except TransportError as error:
                log.error("could not count redelivery of %s: %s", delivery.message.id, error)
                channel.basic_reject(tag, requeue=True)
                return
            channel.basic_ack(tag)
            return
        outcome = run_handler(self.handler, delivery)
        try:
            if isinstance(outcome, Retry):
                delay = self.transport.declare_delay_queue(self.queue, outcome.delay)
                self.transport.republish(delivery, delay, attempt=delivery.attempt)
            elif isinstance(outcome, DeadLetter):
                self.transport.declare(f"{self.queue}.dlq")
                self.transport.republish(
                    delivery, f"{self.queue}.dlq", headers=dead_letter_headers(delivery, outcome)
                )
            else:
                assert isinstance(outcome, Ack)
        except TransportError as error:
            # The copy was not stored: leave the original with the broker. A dead letter is
            # then rejected into <queue>.dlq by the broker itself (without our reason headers).
            log.error("could not park %s from %s: %s", delivery.message.id, self.queue, error)
            channel.basic_reject(tag, requeue=not isinstance(outcome, DeadLetter))
            return
        channel.basic_ack(tag)


class ReplyListener(Connected):
    """Consumes this transport's exclusive reply queue; hands replies to waiting requests."""

    def __init__(self, transport: RabbitMQCommandTransport) -> None:
        self._queue: str | None = None
        self._ready = threading.Event()
        self._waiting: dict[str, threading.Event] = {}
        self._replies: dict[str, TransportMessage] = {}
        self._lock = threading.Lock()
        super().__init__(transport, f"amqp-replies-{uuid.uuid4().hex[:6]}")

    def setup(self, channel: Any) -> None:
        self._ready.clear()
        self._queue, _, _ = channel.queue_declare("", exclusive=True, auto_delete=True)
        channel.basic_consume(self._queue, callback=self._on_reply, no_ack=True)
        self._ready.set()

    def address(self, timeout: float) -> str:
        if not self._ready.wait(timeout) or self._queue is None:
            raise BackendUnavailable(
                f"no reply queue on {redact(self.transport.url)} in {timeout}s"
            )
        return self._queue

    def expect(self, correlation: str) -> threading.Event:
        with self._lock:
            self._waiting[correlation] = event = threading.Event()
        return event

    def take(self, correlation: str) -> TransportMessage:
        with self._lock:
            return self._replies.pop(correlation)

    def forget(self, correlation: str) -> None:
        with self._lock:
            self._waiting.pop(correlation, None)
            self._replies.pop(correlation, None)

    def _on_reply(self, raw: Any) -> None:
        correlation = raw.properties.get("correlation_id")
        with self._lock:
            waiter = self._waiting.get(correlation)
            if waiter is None:
                log.info("discarding a reply to %r: its request is gone", correlation)
                return
            self._replies[correlation] = from_amqp(raw, self._queue or "")[0].message
        waiter.set()


def untoken(token: str | None) -> tuple[str | None, str | None]:
    """A delivered request's reply address is ``<reply queue>#<correlation id>``."""
    if not token:
        return None, None
    queue, _, correlation = token.partition("#")
    return queue, correlation or None
