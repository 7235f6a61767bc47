"""The transport protocols every backend implements. Bytes and string headers only.

Commands and events are different things, so they have different protocols:

* CommandTransport: ``send`` to one queue (one consumer handles each command), ``broadcast`` to
  every queue bound to an exchange (one copy per subscribing group), ``consume`` a queue,
  ``request``/``reply`` for request/response.
* EventTransport: ``publish`` to an append-only log, ``subscribe`` a consumer group from a start
  position, ``replay`` without any group, ``seek`` a group back.

Guarantees every implementation gives (the conformance suite checks them):

* A publishing call returns only after the backend stored the message; otherwise it raises a
  TransportError. Nothing is reported sent that was not stored.
* Delivery is at least once. A handler's Outcome decides what happens next; a handler that
  raises is treated as ``Retry()``. Delivery.attempt counts deliveries of that message.
* DeadLetter moves the message to ``<queue>.dlq`` (commands) or ``<topic>.dlq`` (events) with
  the reason in its headers (adapters.message.DLQ_*), and the consumer moves on.
* ``close()`` on a transport flushes what it accepted and stops its consumers; on a
  Subscription it stops that consumer after its current delivery, leaving the rest for others.
* All methods may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from interchange.adapters.capabilities import Capabilities
from interchange.adapters.message import Delivery, DeliveryHandler, Position, TransportMessage

Start = Literal["earliest", "latest"] | int | datetime | Position
"""Where a new consumer group starts reading: the oldest record, only new ones, the first record
at or after a time, a Position (one a delivery carried, or explicit offsets per partition), or an
int: that offset in every partition, on backends that number records (``Capabilities.offsets``;
elsewhere a TypeError). A group that already committed resumes where it left off."""


class Subscription(Protocol):
    """One running consumer."""

    @property
    def name(self) -> str:
        """Says which consumer this is (its thread's name: backend, channel, group)."""

    @property
    def alive(self) -> bool:
        """Whether its loop still runs: False once it ended, closed or dead (a handler that
        raised SystemExit ends its thread). Readiness (/readyz) and
        ``interchange_consumers_running`` read it; a reconnecting consumer is alive."""

    def stop(self) -> None:
        """Take no further message; returns at once. The delivery in hand is still finished,
        and settled, before the consumer ends (``close`` waits for that)."""

    def close(self, timeout: float = 10.0) -> None:
        """Stop consuming after the delivery in hand, waiting up to ``timeout`` seconds for it;
        unacknowledged messages stay for others."""


class CommandTransport(Protocol):
    capabilities: Capabilities

    def send(self, queue: str, message: TransportMessage) -> None:
        """Put one message on a queue; exactly one of the queue's consumers will handle it.
        The queue is declared if it does not exist."""

    def send_many(self, queue: str, messages: list[TransportMessage]) -> None:
        """Put several messages on a queue in order, returning once the backend stored all of
        them. Raises PublishRejected whose ``failed`` lists the ids not stored."""

    def broadcast(self, exchange: str, message: TransportMessage) -> None:
        """Copy one message to every queue bound to ``exchange``. Raises PublishRejected when
        no queue is bound (an unroutable command is an error, not a success)."""

    def consume(
        self,
        queue: str,
        handler: DeliveryHandler,
        *,
        exchange: str | None = None,
        prefetch: int | None = None,
    ) -> Subscription:
        """Start one consumer of ``queue`` on a thread of its own. With ``exchange`` the queue is
        bound to it first, so it receives broadcasts. At most ``prefetch`` unacknowledged
        messages are held by this consumer (None: the backend's own setting)."""

    def declare(self, queue: str, *, exchange: str | None = None) -> None:
        """Create ``queue`` (bound to ``exchange`` if given) ahead of any consumer, idempotently,
        so messages sent before a consumer starts are kept."""

    def request(self, queue: str, message: TransportMessage, timeout: float) -> TransportMessage:
        """Send a request and wait for its reply. Raises RequestTimeout; a late reply is
        discarded, never handed to a later request."""

    def reply(self, reply_to: str, message: TransportMessage) -> None:
        """Answer a request. ``reply_to`` is the opaque address the request was delivered with.
        Raises PublishRejected when the requester is gone."""

    def close(self) -> None:
        """Flush what was accepted, stop every consumer, release connections. Idempotent."""


class EventTransport(Protocol):
    capabilities: Capabilities

    def publish(self, topic: str, message: TransportMessage) -> None:
        """Append one message to the topic's log. Messages with the same key keep their order."""

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        """Append several messages, returning once the backend acknowledged all of them.
        Raises PublishRejected or BackendUnavailable whose ``failed`` lists the ids affected."""

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
        workers: int = 1,
    ) -> Subscription:
        """Join consumer group ``group`` on a thread of its own. Every group reads every message;
        members of one group share the work. The offset moves only after the handler's Ack.
        With ``workers > 1`` the member handles that many records at once, in order per
        partition key; a Retry then holds only its key (adapters/keyed.py)."""

    def replay(
        self,
        topic: str,
        *,
        since: Start = "earliest",
        until: datetime | None = None,
    ) -> Iterator[Delivery]:
        """Read the log from ``since`` up to ``until`` (or its current end) without joining a
        group or moving any group's offset."""

    def seek(self, topic: str, group: str, to: Start) -> None:
        """Move a group's committed position, e.g. back to reprocess. Takes effect for members
        that join afterwards."""

    def close(self) -> None:
        """Flush what was accepted, stop every consumer, release connections. Idempotent."""


@runtime_checkable
class FailsFast(Protocol):
    """A transport whose publishing verbs can give up quickly. A failover wrapper asks for it:
    with a spool to fall back on, waiting out a broker that is down only blocks the caller."""

    def fail_fast(self, within: float) -> None:
        """From now on publishing raises BackendUnavailable at once when the broker refuses
        connections or has closed them, and within ``within`` seconds when it does not answer
        (no connection, no acknowledgement), instead of retrying for its own timeouts."""


@runtime_checkable
class LimitsMessageSize(Protocol):
    """A transport that knows, without asking its broker, the largest message it sends: a
    failover wrapper refuses a larger one at once instead of spooling what the primary would
    refuse when the spool is drained."""

    @property
    def max_message_bytes(self) -> int:
        """Body, key and header names and values of one message together may not exceed it."""


@runtime_checkable
class HasBacklog(Protocol):
    """A transport that can say how much waits for a consumer (the ops port's metrics)."""

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        """Messages waiting for ``group`` (None: a queue's own consumers) on ``channel``, by
        part: Kafka per partition (latest offset minus the group's committed one), RabbitMQ
        the queue's ready messages, Redis entries not yet delivered plus pending. Raises
        TransportError when the broker does not answer; {} when the channel does not exist."""


Verdict = Literal["keep", "take", "stop"]
"""What an operator's sweep decides for one dead letter: leave it, take it (it leaves the
dead-letter channel), or stop the sweep there."""


@runtime_checkable
class SweepsDeadLetters(Protocol):
    """A transport whose dead-letter channels an operator can go through (``interchange dlq``)
    without a consumer group, the ``handles_dead_letters`` readers left undisturbed."""

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        """Show ``decide`` each message waiting on the dead-letter ``channel``, oldest first
        (on a partitioned log: per partition), each once, none held by a consumer; a message
        it answers ``take`` for leaves the channel once ``decide`` returned (so republish it
        there first, for a requeue); ``stop`` ends the sweep. Returns how many were taken.
        On a queue, kept messages stay where they were (RabbitMQ counts them redelivered); on
        a log, taken records are marked settled in a cursor of their own and not shown
        again. Raises TransportError when the broker does not answer."""


class Spool(Protocol):
    """Durable, ordered parking for messages while a primary is down, one line per destination.
    The failover transports (adapters.failover) publish into it and drain it back."""

    def append(self, line: str, messages: list[TransportMessage]) -> None:
        """Store messages at the end of a line; raises BackendUnavailable when it cannot."""

    def head(self, line: str, count: int) -> list[tuple[str, TransportMessage]]:
        """The oldest ``count`` entries of a line, with their spool ids."""

    def remove(self, line: str, ids: list[str]) -> None:
        """Delete entries after the primary confirmed them."""

    def lines(self) -> list[str]:
        """Every line holding entries."""

    def depth(self, prefix: str = "") -> int:
        """Entries waiting in the lines whose name starts with ``prefix`` (all: "")."""

    def refuse(self, line: str, entries: list[tuple[str, TransportMessage]], reason: str) -> None:
        """Move entries the primary refused out of the line, in one step, into the line's
        refused stream with ``reason``: kept for an operator, never drained again."""

    def refused(self, prefix: str = "") -> int:
        """Entries moved aside as refused, in the lines whose name starts with ``prefix``."""

    def claim(self, line: str, owner: str, seconds: float) -> bool:
        """Take, or renew, the right to drain a line for ``seconds``; False while another owner
        holds it. One drainer per line keeps its order across processes."""

    def release(self, line: str, owner: str) -> None:
        """Give the line back, if ``owner`` still holds it."""

    def report(self, process: str, status: dict[str, Any] | None, ttl: float) -> None:
        """Publish one process's failover status (circuit state per side) for ``ttl`` seconds,
        so other processes (``interchange health``) see it; None withdraws it."""

    def reports(self) -> dict[str, dict[str, Any]]:
        """The last status of every process whose report has not expired."""

    def close(self) -> None:
        """Release connections."""


class DedupeStore(Protocol):
    """Handled message ids, so a redelivered duplicate is not handled twice.

    An id is remembered only after its handler succeeded: a message whose handler crashed must
    still be handled when it is redelivered. Keys are ``<scope>|<message id>``, the scope naming
    the channel and group; ``forget(scope)`` lets a deliberate re-read (seek) reach the handler
    again. A store that cannot be reached raises BackendUnavailable.
    """

    def seen(self, key: str) -> bool:
        """True when ``key`` was remembered and has not expired."""

    def remember(self, key: str) -> None:
        """Remember ``key`` for the store's time to live."""

    def forget(self, scope: str) -> None:
        """Forget every key of ``scope``, so its messages are handled again."""
