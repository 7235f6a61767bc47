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

import logging
import threading
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import kombu

from interchange.adapters._amqp import (
    ConfirmingPublisher,
    Publish,
    delay_queue,
    mapped_errors,
    queue_arguments,
    to_amqp,
)
from interchange.adapters._amqp_threads import Consumer, ReplyListener, untoken
from interchange.adapters.capabilities import Capabilities
from interchange.adapters.errors import BackendUnavailable, PublishRejected, RequestTimeout
from interchange.adapters.message import (
    Delivery,
    DeliveryHandler,
    TransportMessage,
)

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
        self._consumers: list[Consumer] = []
        self._replies: ReplyListener | None = None
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
        reply_to, correlation = untoken(message.reply_to)
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
    ) -> Consumer:
        self._check_open()
        self.declare(queue, exchange=exchange)
        consumer = Consumer(self, queue, exchange, handler, prefetch or self.prefetch)
        with self._lock:
            self._consumers.append(consumer)
        return consumer

    # -- request / reply ------------------------------------------------------------------

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self._check_open()
        with self._lock:
            if self._replies is None:
                self._replies = ReplyListener(self)
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
        queue, correlation = untoken(reply_to)
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


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
