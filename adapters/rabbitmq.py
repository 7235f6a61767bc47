"""RabbitMQ through kombu / py-amqp: the home of commands.

Features
    point-to-point (``send``, ``send_many``): a durable queue per route, competing consumers;
    publish-subscribe (``broadcast``): a durable fanout exchange, one durable queue per group;
    request/response over an exclusive reply queue, matched by correlation id;
    publisher confirms on every publish, pipelined in a window, with ``mandatory``: an
    unroutable command raises PublishRejected instead of vanishing;
    manual ack only after the handler answered; bounded prefetch;
    retries with backoff through delay queues (per-message TTL + dead-lettering back to the
    queue: no sleeping consumer); dead letters to ``<queue>.dlq`` with the reason in headers;
    our own attempt count (RabbitMQ 3.x classic queues have no delivery limit);
    reconnection with backoff for publishers and consumers; unacked messages come back.
Connection string
    ``amqp://user:password@host:5672/vhost`` or ``amqps://...``, with optional query options.
Options (URL query)
    ``prefetch`` (100) unacked messages per consumer; ``queue_type`` (``classic`` | ``quorum``);
    ``window`` (500) unconfirmed publishes in flight; ``confirm_timeout`` (30) seconds;
    ``connect_timeout`` (10) seconds; ``heartbeat`` (30) seconds.
Guarantees
    At least once. A send returns only after the broker confirmed it. Bodies are never
    deserialized by kombu (no pickle, whatever the content type): they reach the codec as bytes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adapters._amqp import (
    CONNECTION_ERRORS,
    ConfirmingPublisher,
    Publish,
    delay_queue,
    from_amqp,
    mapped_errors,
    queue_arguments,
    to_amqp,
)
from adapters._threads import ConsumerThread, run_handler
from adapters._urls import redact
from adapters.capabilities import Capabilities
from adapters.errors import BackendUnavailable, PublishRejected, RequestTimeout, TransportError
from adapters.message import (
    Ack,
    DeadLetter,
    Delivery,
    DeliveryHandler,
    Retry,
    TransportMessage,
    dead_letter_headers,
)

try:
    import amqp.exceptions
    import kombu
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the amqp:// backend needs kombu: pip install 'interchange[kombu]'"
    ) from missing

log = logging.getLogger("interchange.adapters.rabbitmq")

CAPABILITIES = Capabilities(
    header_prefix="cloudEvents_",
    persistent=True,
    ordered_log=False,
    consumer_groups=True,
    replay=False,
    request_reply=True,
    survives_restart=True,
)
_OPTIONS = {
    "prefetch": 100,
    "queue_type": "classic",
    "window": 500,
    "confirm_timeout": 30.0,
    "connect_timeout": 10.0,
    "heartbeat": 30,
}


def probe(url: str, timeout: float = 5.0) -> str:
    """Open a connection and a channel; return the broker's product and version."""
    connection = kombu.Connection(_split_options(url)[0], connect_timeout=timeout)
    try:
        with mapped_errors(url, "connect"):
            connection.ensure_connection(max_retries=0, timeout=timeout)
            connection.channel().close()
            info = connection.connection.server_properties
        return f"{_text(info.get('product', 'AMQP broker'))} {_text(info.get('version', '?'))}"
    finally:
        connection.release()


class RabbitMQCommandTransport:
    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.url, options = _split_options(url)
        self.prefetch = int(options["prefetch"])
        self.queue_type = str(options["queue_type"])
        self.connect_timeout = float(options["connect_timeout"])
        self.heartbeat = int(options["heartbeat"])
        self.publisher = ConfirmingPublisher(
            self.url,
            connect=self.connect,
            window=int(options["window"]),
            confirm_timeout=float(options["confirm_timeout"]),
        )
        self._consumers: list[_Consumer] = []
        self._replies: _ReplyListener | None = None
        self._lock = threading.Lock()
        self._closed = False

    def connect(self) -> kombu.Connection:
        """A new connection, retried with backoff for up to ``connect_timeout`` seconds."""
        connection = kombu.Connection(
            self.url, heartbeat=self.heartbeat, connect_timeout=self.connect_timeout
        )
        connection.ensure_connection(
            max_retries=None,
            interval_start=0.2,
            interval_step=0.5,
            interval_max=2.0,
            timeout=self.connect_timeout,
        )
        return connection

    # -- topology -------------------------------------------------------------------------

    def declare_on(
        self, channel: Any, queue: str, exchange: str | None = None, known: set[str] | None = None
    ) -> None:
        """Declare a durable queue (and its fanout exchange and binding), idempotently."""
        known = known if known is not None else set()
        if queue not in known:
            channel.queue_declare(
                queue,
                durable=True,
                auto_delete=False,
                arguments=queue_arguments(queue, self.queue_type),
            )
            known.add(queue)
        if exchange is not None and f"{exchange}->{queue}" not in known:
            self._declare_exchange(channel, exchange, known)
            channel.queue_bind(queue, exchange, routing_key="")
            known.add(f"{exchange}->{queue}")

    @staticmethod
    def _declare_exchange(channel: Any, exchange: str, known: set[str]) -> None:
        if f"exchange:{exchange}" not in known:
            channel.exchange_declare(exchange, "fanout", durable=True, auto_delete=False)
            known.add(f"exchange:{exchange}")

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self._check_open()
        with self.publisher.lock, mapped_errors(self.url, f"declare {queue!r}"):
            self.declare_on(self.publisher.channel, queue, exchange, self.publisher.declared)

    def declare_delay_queue(self, queue: str, delay: float) -> str:
        name, arguments = delay_queue(queue, delay)
        with self.publisher.lock, mapped_errors(self.url, f"declare {name!r}"):
            if name not in self.publisher.declared:
                self.publisher.channel.queue_declare(
                    name, durable=True, auto_delete=False, arguments=arguments
                )
                self.publisher.declared.add(name)
        return name

    # -- publishing -----------------------------------------------------------------------

    def send(self, queue: str, message: TransportMessage) -> None:
        self.send_many(queue, [message])

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        self.declare(queue)
        self.publisher.publish([Publish("", queue, to_amqp(m), m.id) for m in messages])

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self._check_open()
        with self.publisher.lock, mapped_errors(self.url, f"declare {exchange!r}"):
            self._declare_exchange(self.publisher.channel, exchange, self.publisher.declared)
        self.publisher.publish([Publish(exchange, "", to_amqp(message), message.id)])

    def republish(
        self,
        delivery: Delivery,
        queue: str,
        *,
        headers: dict[str, str] | None = None,
        attempt: int = 0,
    ) -> None:
        """Publish a delivered message again (retry copy or dead letter), confirmed."""
        message = delivery.message
        reply_to, correlation = _untoken(message.reply_to)
        copy = replace(message, reply_to=reply_to, headers=headers or message.headers)
        self.publisher.publish(
            [
                Publish(
                    "", queue, to_amqp(copy, attempt=attempt, correlation_id=correlation), copy.id
                )
            ]
        )

    # -- consuming ------------------------------------------------------------------------

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int | None = None,
    ) -> _Consumer:
        self._check_open()
        self.declare(queue, exchange=exchange)
        consumer = _Consumer(self, queue, exchange, handler, prefetch or self.prefetch)
        with self._lock:
            self._consumers.append(consumer)
        return consumer

    # -- request / reply ------------------------------------------------------------------

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self._check_open()
        with self._lock:
            if self._replies is None:
                self._replies = _ReplyListener(self)
            replies = self._replies
        reply_queue = replies.address(self.connect_timeout)
        waiter = replies.expect(message.id)
        try:
            self.declare(queue)
            request = replace(message, reply_to=reply_queue)
            self.publisher.publish(
                [Publish("", queue, to_amqp(request, correlation_id=message.id), message.id)]
            )
            if not waiter.wait(timeout):
                raise RequestTimeout(f"no reply on {queue!r} within {timeout}s")
            return replies.take(message.id)
        finally:
            replies.forget(message.id)

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self._check_open()
        queue, correlation = _untoken(reply_to)
        if queue is None:
            raise PublishRejected(f"not a reply address: {reply_to!r}")
        try:
            self.publisher.publish(
                [Publish("", queue, to_amqp(message, correlation_id=correlation), message.id)]
            )
        except PublishRejected as error:
            raise PublishRejected(f"requester {queue!r} is gone: {error}") from error

    # -- lifecycle ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("transport is closed")

    def close(self) -> None:
        self._closed = True
        with self._lock:
            consumers, self._consumers = self._consumers, []
            replies, self._replies = self._replies, None
        for consumer in consumers:
            consumer.stop()
        for consumer in consumers:
            consumer.close()
        if replies is not None:
            replies.close()
        with self.publisher.lock:
            self.publisher.reset()


class _Connected:
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


class _Consumer(_Connected):
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


class _ReplyListener(_Connected):
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


def _split_options(url: str) -> tuple[str, dict[str, Any]]:
    """Our options out of the URL's query; the rest of the URL goes to kombu."""
    parts = urlsplit(url)
    options = dict(_OPTIONS)
    rest = []
    for key, value in parse_qsl(parts.query):
        if key in options:
            options[key] = value
        else:
            rest.append((key, value))
    if options["queue_type"] not in ("classic", "quorum"):
        raise ValueError(f"queue_type must be classic or quorum, not {options['queue_type']!r}")
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def _untoken(token: str | None) -> tuple[str | None, str | None]:
    """A delivered request's reply address is ``<reply queue>#<correlation id>``."""
    if not token:
        return None, None
    queue, _, correlation = token.partition("#")
    return queue, correlation or None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
