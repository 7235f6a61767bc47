"""Requests over RabbitMQ's direct reply-to: the requesting thread reads its own reply.

A request is published with ``reply_to = amq.rabbitmq.reply-to`` on a channel that consumes
that pseudo-queue; RabbitMQ hands the reply straight to that channel. No reply queue is
declared, and no listener thread hands replies over: the thread that asked drains its own
connection until the reply (or the broker's refusal, or the timeout) comes.

py-amqp connections are not thread safe, so each request in flight takes a line (a connection
and a channel) of its own from a pool and gives it back. A line idle for more than a second is
looked at before use: a broker restart or a missed heartbeat left it closed.

The request is published in confirm mode and with ``mandatory``: an unroutable request (no
queue) and a nacked one fail at once, instead of at the timeout. Its ack is read in the same
loop as the reply, never waited for on its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import amqp
import kombu
from amqp import spec

from interchange.adapters.errors import BackendUnavailable, PublishRejected, RequestTimeout
from interchange.adapters.rabbitmq.errors import CHANNEL_ERRORS, CONNECTION_ERRORS

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_LOOK_AFTER = 1.0
"""Seconds of idleness after which a line is checked before a request goes out on it."""


class _Line:
    """One connection and channel, consuming direct replies; used by one request at a time."""

    def __init__(self, connection: kombu.Connection) -> None:
        self.connection = connection
        self.channel: Any = connection.channel()
        self.channel.confirm_select()  # acks need no handler: the reply ends the wait
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)
        self.channel.basic_consume(DIRECT_REPLY_TO, callback=self._on_reply, no_ack=True)
        self.used = time.monotonic()
        self._published = 0  # publishes on this channel: the confirm sequence
        self._awaited: str | None = None
        self.reply: amqp.Message | None = None
        self.refused: str | None = None

    def ask(
        self, queue: str, message: amqp.Message, correlation: str, timeout: float
    ) -> amqp.Message:
        self._awaited, self.reply, self.refused = correlation, None, None
        message.properties["reply_to"] = DIRECT_REPLY_TO
        message.properties["correlation_id"] = correlation
        # send_method, not basic_publish: that polls the socket first on every call
        self.channel.send_method(spec.Basic.Publish, "Bssbb", (0, "", queue, True, False), message)
        self._published += 1
        deadline = time.monotonic() + timeout
        while self.reply is None and self.refused is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(f"no reply on {queue!r} within {timeout}s")
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=remaining)
        self.used = time.monotonic()
        if self.refused is not None:
            raise PublishRejected(f"request on {queue!r} not taken: {self.refused}")
        return self.reply

    def alive(self) -> bool:
        """False when the broker closed the connection while the line was idle."""
        try:
            self.connection.drain_events(timeout=0)  # reads a close, or an EOF, if one came
        except TimeoutError:
            return True
        except (*CONNECTION_ERRORS, *CHANNEL_ERRORS):
            return False
        return True

    def close(self) -> None:
        # no close handshake: it waits for the broker without a timeout
        with contextlib.suppress(Exception):
            self.connection.collect()

    def _on_reply(self, raw: amqp.Message) -> None:
        if raw.properties.get("correlation_id") == self._awaited:
            self.reply = raw  # a reply to an earlier request, which timed out, is dropped

    def _on_nack(self, tag: int, multiple: bool) -> None:
        if tag == self._published or (multiple and tag >= self._published):
            self.refused = "nacked by the broker (not stored)"

    def _on_return(self, error: Exception, exchange: str, routing_key: str, message: Any) -> None:
        if message.properties.get("correlation_id") == self._awaited:
            self.refused = f"unroutable: no queue {routing_key!r} ({error})"


class Requester:
    """The pool of lines of one transport."""

    def __init__(self, connect: Callable[[], kombu.Connection]) -> None:
        self._connect = connect
        self._idle: list[_Line] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self, queue: str, message: amqp.Message, correlation: str, timeout: float
    ) -> amqp.Message:
        """Publish ``message`` to ``queue`` and return its reply. Raises RequestTimeout,
        PublishRejected (unroutable, nacked) or a driver error (the line is then dropped)."""
        line = self._take()
        try:
            reply = line.ask(queue, message, correlation, timeout)
        except (RequestTimeout, PublishRejected):
            self._give_back(line)  # the line is fine; a late reply will be dropped
            raise
        except BaseException:
            line.close()
            raise
        self._give_back(line)
        return reply

    def _take(self) -> _Line:
        while True:
            with self._lock:
                if self._closed:
                    raise BackendUnavailable("the transport is closed")
                line = self._idle.pop() if self._idle else None
            if line is None:
                return _Line(self._connect())
            if time.monotonic() - line.used < _LOOK_AFTER or line.alive():
                return line
            line.close()

    def _give_back(self, line: _Line) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(line)
                return
        line.close()

    def close(self) -> None:
        with self._lock:
            self._closed, lines, self._idle = True, self._idle, []
        for line in lines:
            line.close()
