"""The RabbitMQ command transport: the protocol verbs, over a confirming publisher and consumer
threads (see the package's datasheet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import kombu
from amqp import spec

from interchange.adapters.errors import PublishRejected
from interchange.adapters.lifecycle import Consumers
from interchange.adapters.message import Delivery, DeliveryHandler, TransportMessage
from interchange.adapters.protocols import Verdict
from interchange.adapters.rabbitmq import CAPABILITIES
from interchange.adapters.rabbitmq.consumer import Consumer, Links, on_channel
from interchange.adapters.rabbitmq.errors import CHANNEL_ERRORS, mapped_errors
from interchange.adapters.rabbitmq.options import RabbitMQOptions
from interchange.adapters.rabbitmq.publisher import ConfirmingPublisher, Publish
from interchange.adapters.rabbitmq.requester import DIRECT_REPLY_TO, Requester
from interchange.adapters.rabbitmq.wire import from_amqp, to_amqp, untoken
from interchange.adapters.urls import split_options


def probe(url: str, timeout: float = 5.0) -> str:
    """Open a connection and a channel; return the broker's product and version."""
    connection = kombu.Connection(split_options(url, RabbitMQOptions)[0], connect_timeout=timeout)
    try:
        with mapped_errors(url, "connect"):
            connection.ensure_connection(max_retries=0, timeout=timeout)
            connection.channel().close()
            info = connection.connection.server_properties
        return f"{_text(info.get('product', 'AMQP broker'))} {_text(info.get('version', '?'))}"
    finally:
        connection.release()


class RabbitMQCommandTransport:
    """Commands over RabbitMQ: queues, fanout exchanges, request/reply, confirmed publishes."""

    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.url, self.options, _ = split_options(url, RabbitMQOptions)
        self._fail_within: float | None = None
        self.publisher = ConfirmingPublisher(
            self.url,
            connect=self._connect_publisher,
            window=self.options.window,
            confirm_timeout=self.options.confirm_timeout,
            queue_type=self.options.queue_type,
        )
        self.links = Links(
            url=self.url,
            connect=self.connect,
            queue_type=self.options.queue_type,
            republish=self._republish,
            delay_queue=self._declare_delay_queue,
            declare=self.declare,
        )
        self.consumers = Consumers()
        self.requester = Requester(self._connect_publisher)

    def connect(self, timeout: float | None = None, *, retry: bool = True) -> kombu.Connection:
        """A new connection, retried with backoff for up to ``timeout`` seconds (default
        ``connect_timeout``); with ``retry=False`` one attempt per node, so refused ones fail
        at once. Several nodes (``amqp://a//;amqp://b//``) are tried in turn, as kombu does."""
        timeout = timeout or self.options.connect_timeout
        connection = kombu.Connection(
            self.url, heartbeat=self.options.heartbeat, connect_timeout=timeout
        )
        # kombu moves to the next node after each failure and sleeps only after a full round
        once_each = max(0, len(connection.alt) - 1)
        connection.ensure_connection(
            max_retries=None if retry else once_each, interval_start=0.2, interval_step=0.5,
            interval_max=2.0, timeout=timeout,
        )  # fmt: skip
        return connection

    def fail_fast(self, within: float) -> None:
        """Publishing connects once (a refused connection fails at once) with ``within`` as its
        connect timeout, and waits ``within`` at most for confirms. Consumers keep retrying."""
        self._fail_within = within
        self.publisher.confirm_timeout = min(self.options.confirm_timeout, within)

    def _connect_publisher(self) -> kombu.Connection:
        if self._fail_within is None:
            return self.connect()
        return self.connect(self._fail_within, retry=False)

    # -- topology -------------------------------------------------------------------------

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        self.consumers.check_open()
        publisher = self.publisher
        if exchange is None and queue in publisher.topology.declared:
            return  # declared on this connection: no lock to take (every send asks)
        with publisher.lock, mapped_errors(self.url, f"declare {queue!r}"):
            publisher.topology.queue(publisher.channel, queue, exchange)

    def _declare_delay_queue(self, queue: str, delay: float) -> str:
        publisher = self.publisher
        with publisher.lock, mapped_errors(self.url, f"declare a delay queue for {queue!r}"):
            return publisher.topology.delay_queue(publisher.channel, queue, delay)

    # -- publishing -----------------------------------------------------------------------

    def send(self, queue: str, message: TransportMessage) -> None:
        self.send_many(queue, [message])

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        self.declare(queue)
        self.publisher.publish([Publish("", queue, to_amqp(m), m.id) for m in messages])

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        publisher = self.publisher
        with publisher.lock, mapped_errors(self.url, f"declare {exchange!r}"):
            publisher.topology.exchange(publisher.channel, exchange)
        publisher.publish([Publish(exchange, "", to_amqp(message), message.id)])

    def _republish(
        self, delivery: Delivery, queue: str, headers: dict[str, str] | None, attempt: int
    ) -> None:
        """Publish a delivered message again (retry copy or dead letter), confirmed."""
        message = delivery.message
        reply_to, correlation = untoken(message.reply_to)
        copy = replace(message, reply_to=reply_to, headers=headers or message.headers)
        wire = to_amqp(copy, attempt=attempt, correlation_id=correlation)
        self.publisher.publish([Publish("", queue, wire, copy.id)])

    # -- consuming ------------------------------------------------------------------------

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int | None = None,
    ) -> Consumer:
        self.consumers.check_open()
        self.declare(queue, exchange=exchange)
        consumer = Consumer(
            self.links,
            queue,
            exchange,
            handler,
            prefetch or self.options.prefetch,
            ack_every=self.options.ack_every,
        )
        return self.consumers.add(consumer)

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        """The queue's ready messages (a passive declare on the publisher's channel)."""
        with self.publisher.lock, mapped_errors(self.url, f"measure queue {channel!r}"):
            try:
                declared = self.publisher.channel.queue_declare(channel, passive=True)
            except CHANNEL_ERRORS:  # no such queue: the broker closed the channel
                self.publisher.reset()
                return {}
        return {"": int(declared.message_count)}

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """The queue's ready messages in order (basic.get on a connection of its own): a taken
        one is acked; kept ones return to their place when the connection closes, marked
        redelivered. Bounded by the count at the start, so none is shown twice."""
        self.consumers.check_open()
        taken = 0
        with mapped_errors(self.url, f"read the messages of {channel!r}"):
            connection = self.connect()
            try:
                reading = connection.channel()
                try:
                    declared = reading.queue_declare(channel, passive=True)
                except CHANNEL_ERRORS:  # no such queue: nothing was ever dead-lettered
                    return 0
                for _ in range(int(declared.message_count)):
                    raw = reading.basic_get(channel, no_ack=False)
                    if raw is None:
                        break
                    verdict = decide(from_amqp(raw, channel)[0].message)
                    if verdict == "stop":
                        break
                    if verdict == "take":
                        reading.basic_ack(raw.delivery_tag)
                        taken += 1
            finally:
                connection.release()
        return taken

    # -- request / reply ------------------------------------------------------------------

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        self.consumers.check_open()
        self.declare(queue)
        # not persistent: a request outliving its requester is answered to no one, and a
        # persistent one waited for the disk before its confirm
        wire = to_amqp(message, correlation_id=message.id, persistent=False)
        with mapped_errors(self.url, f"request on {queue!r}"):
            raw = self.requester.request(queue, wire, message.id, timeout)
        return from_amqp(raw, queue)[0].message

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        self.consumers.check_open()
        queue, correlation = untoken(reply_to)
        if queue is None:
            raise PublishRejected(f"not a reply address: {reply_to!r}")
        wire = to_amqp(message, correlation_id=correlation, persistent=False)
        direct = queue.startswith(DIRECT_REPLY_TO + ".")
        channel = on_channel()
        if direct and channel is not None:
            # A direct reply (what our requesters ask for) from a handler: written on the
            # channel the request came on, as RabbitMQ's RPC servers do, without a confirm:
            # waiting for it held the consumer from the next request (~10% of the round
            # trips, measured). A reply lost is its requester's RequestTimeout.
            with mapped_errors(self.url, "reply"):
                channel.send_method(spec.Basic.Publish, "Bssbb", (0, "", queue, False, False), wire)
            return
        try:  # confirmed; another kind of requester's reply queue refuses it once gone
            self.publisher.publish([Publish("", queue, wire, message.id, mandatory=not direct)])
        except PublishRejected as error:
            raise PublishRejected(f"requester {queue!r} is gone: {error}") from error

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self.consumers.close()
        self.requester.close()
        with self.publisher.lock:
            self.publisher.reset()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
