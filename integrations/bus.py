"""Bus: the one facade. The only place that knows both contracts and transports.

Commands: ``send`` (point-to-point), ``broadcast`` (a copy per subscribing group), ``request``
(a command with a reply). Events: ``publish``, ``subscribes``, ``replay``, ``seek``. Handlers
register with ``handles`` / ``subscribes`` and run on worker threads between ``start()`` and
``stop()`` (or inside ``with bus:``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from interchange.adapters import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE,
    CommandTransport,
    Delivery,
    DeliveryHandler,
    EventTransport,
    Outcome,
    Start,
    Subscription,
    TransportMessage,
    open_commands,
    open_events,
)
from interchange.config import Settings, load_settings
from interchange.contracts import (
    Codec,
    Command,
    Contract,
    DecodeError,
    Envelope,
    Event,
    Registry,
    converters,
    registry,
)
from interchange.dedupe import DedupeStore, open_dedupe
from interchange.dispatch import Dispatcher, HandlerFunc, dedupe_scope
from interchange.drain import Drainer, with_fallback
from interchange.versions import EXTENSION, decide

log = logging.getLogger("interchange")

C = TypeVar("C", bound=Contract)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message that was given up on, with why. ``envelope`` is None when it never decoded."""

    message: TransportMessage
    reason: str
    error: str
    attempts: int
    source: str
    envelope: Envelope | None


@dataclass(frozen=True)
class _Registration:
    channel: str
    start_consumer: Callable[[], Subscription]
    concurrency: int


class Bus:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        commands: CommandTransport | None = None,
        events: EventTransport | None = None,
        contracts: Registry = registry,
        dedupe: DedupeStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.contracts = contracts
        self.commands = commands or open_commands(self.settings.backends.commands)
        self.events = events or open_events(self.settings.backends.events)
        self.drainer: Drainer | None = None
        if self.settings.backends.fallback:
            self.commands, self.events, self.drainer = with_fallback(
                self.settings, self.commands, self.events
            )
        self.dedupe = dedupe or open_dedupe(self.settings.dedupe, self.settings.dedupe_ttl)
        self._command_codec = self._codec(self.commands.capabilities.header_prefix)
        self._event_codec = self._codec(self.events.capabilities.header_prefix)
        self._registrations: list[_Registration] = []
        self._running: list[Subscription] = []
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: str | Path | Mapping[str, Any] | Settings | None = None, **options: Any
    ) -> Bus:
        """A Bus from ``interchange.toml``, a YAML file, a dict or Settings; ``INTERCHANGE_*``
        environment variables override what the file says."""
        return cls(load_settings(config), **options)

    def _codec(self, prefix: str) -> Codec:
        return Codec(prefix, contracts=self.contracts, max_body_bytes=self.settings.max_body_bytes)

    # -- names ----------------------------------------------------------------------------

    def _name(self, name: str) -> str:
        return self.settings.channel_prefix + name

    def queue_of(self, contract: type[Contract]) -> str:
        return self._name(
            self.settings.route(contract.contract_name).queue or contract.contract_name
        )

    def exchange_of(self, contract: type[Contract]) -> str:
        route = self.settings.route(contract.contract_name)
        return self._name(route.exchange or contract.contract_name)

    def topic_of(self, contract: type[Contract], version: int | None = None) -> str:
        """The contract's topic; with the per-version layout, that of ``version`` (by default
        the contract's own)."""
        route = self.settings.route(contract.contract_name)
        topic = self._name(route.topic or contract.contract_name)
        if route.layout == "per-version":
            return f"{topic}.v{version or contract.contract_version}"
        return topic

    def group_queue_of(self, contract: type[Contract], group: str) -> str:
        return f"{self.exchange_of(contract)}.{group}"

    # -- commands -------------------------------------------------------------------------

    def send(self, command: Command, **options: Any) -> str:
        """Send a command to its queue; one consumer handles it. Returns the message id once
        the backend stored it; raises a TransportError otherwise."""
        _expect(command, Command, "send", "publish")
        message = self._encode(command, self._command_codec, **options)
        self.commands.send(self.queue_of(type(command)), message)
        return message.id

    def send_many(self, commands: list[Command], **options: Any) -> list[str]:
        """Send commands of one contract in order, with the backend's confirms pipelined (far
        faster than one ``send`` each). Returns their ids once every one was stored; raises
        PublishRejected whose ``failed`` lists the ids that were not."""
        if not commands:
            return []
        kinds = {type(c) for c in commands}
        if len(kinds) != 1:
            raise TypeError("send_many takes commands of one contract (one queue) per call")
        for command in commands:
            _expect(command, Command, "send_many", "publish")
        messages = [self._encode(c, self._command_codec, **options) for c in commands]
        self.commands.send_many(self.queue_of(kinds.pop()), messages)
        return [m.id for m in messages]

    def broadcast(self, command: Command, **options: Any) -> str:
        """Copy a command to every subscribing group. Raises PublishRejected when no group is
        bound: an unroutable command is an error."""
        _expect(command, Command, "broadcast", "publish")
        message = self._encode(command, self._command_codec, **options)
        self.commands.broadcast(self.exchange_of(type(command)), message)
        return message.id

    def request(
        self, command: Command, *, timeout: float | None = None, **options: Any
    ) -> Contract:
        """Send a command and wait for the handler's reply. Raises RequestTimeout."""
        _expect(command, Command, "request", "publish")
        message = self._encode(command, self._command_codec, **options)
        reply = self.commands.request(
            self.queue_of(type(command)), message, timeout or self.settings.request_timeout
        )
        envelope = self._command_codec.decode(reply.headers, reply.body)
        if envelope.correlation_id != message.id:
            raise DecodeError(
                f"reply correlates with {envelope.correlation_id!r}, not request {message.id!r}"
            )
        return envelope.data

    def _reply(self, request: Envelope, reply_to: str, result: Contract) -> None:
        envelope = Envelope.wrap(
            result,
            source=self.settings.source,
            correlation_id=request.id,
            causation_id=request.id,
        )
        headers, body = self._command_codec.encode(envelope)
        self.commands.reply(reply_to, TransportMessage(envelope.id, body, headers))

    # -- events ---------------------------------------------------------------------------

    def publish(self, event: Event, **options: Any) -> str:
        """Append an event to its topic's log — once per version the route lists, each derived
        by the registered converters. Returns its id once the backend stored every record."""
        event_id, records = self._event_records(event, options)
        for topic, message in records:
            self.events.publish(topic, message)
        return event_id

    def publish_many(self, events: list[Event], **options: Any) -> list[str]:
        """Append events of one contract, waiting once for all acknowledgements. Returns their
        ids once every one was stored; the error's ``failed`` lists those that were not."""
        if not events:
            return []
        if len({type(e) for e in events}) != 1:
            raise TypeError("publish_many takes events of one contract (one topic) per call")
        ids: list[str] = []
        per_topic: dict[str, list[TransportMessage]] = {}
        for event in events:
            event_id, records = self._event_records(event, dict(options))
            ids.append(event_id)
            for topic, message in records:
                per_topic.setdefault(topic, []).append(message)
        for topic, messages in per_topic.items():
            self.events.publish_many(topic, messages)
        return ids

    def _event_records(
        self, event: Event, options: dict[str, Any]
    ) -> tuple[str, list[tuple[str, TransportMessage]]]:
        """(id, [(topic, message)]) for every version the route publishes of this event."""
        _expect(event, Event, "publish", "send")
        route = self.settings.route(event.contract_name)
        if route.partition_key and "key" not in options:
            options["key"] = str(getattr(event, route.partition_key))
        versions = route.versions or [event.contract_version]
        base_id = options.pop("id", None) or str(uuid.uuid4())
        headers = dict(options.pop("headers", None) or {})
        if len(versions) > 1:
            headers[self._event_codec.prefix + EXTENSION] = ",".join(map(str, versions))
        records = []
        for version in versions:
            twin = (
                event if version == event.contract_version else converters.convert(event, version)
            )
            twin_id = base_id if version == event.contract_version else f"{base_id}.v{version}"
            message = self._encode(twin, self._event_codec, id=twin_id, headers=headers, **options)
            records.append((self.topic_of(type(event), version), message))
        return base_id, records

    def replay(
        self,
        contract: type[C],
        *,
        since: Start | Literal["beginning"] = "earliest",
        until: Any = None,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> Iterator[C]:
        """Read the contract's log again without joining a group or moving any offset.
        Undecodable records raise DecodeError, or are logged and skipped with ``on_error``."""
        start: Start = "earliest" if since == "beginning" else since
        for delivery in self.events.replay(self.topic_of(contract), since=start, until=until):
            try:
                envelope = self._event_codec.decode(delivery.message.headers, delivery.message.body)
                decision = decide(envelope, contract, self._event_codec.prefix)
                if decision.dead is not None:
                    raise DecodeError(f"offset {delivery.offset}: {decision.dead}")
            except DecodeError as error:
                if on_error == "raise":
                    raise
                log.warning("replay skipped offset %s: %s", delivery.offset, error)
                continue
            if decision.envelope is not None:
                yield decision.envelope.data  # type: ignore[misc]

    def seek(self, contract: type[Event], group: str, to: Start) -> None:
        """Move a consumer group's position, e.g. back to reprocess. The group's handled ids
        are forgotten, so the records it reads again reach its handler again."""
        topic = self.topic_of(contract)
        self.events.seek(topic, group, to)
        self.dedupe.forget(dedupe_scope(topic, group))

    # -- handlers -------------------------------------------------------------------------

    def handles(
        self, contract: type[Command], *, group: str | None = None, concurrency: int | None = None
    ) -> Callable[[F], F]:
        """Register a command handler. Without ``group`` it competes for the contract's queue
        (point-to-point); with ``group`` that group gets its own copy of every broadcast."""
        if not issubclass(contract, Command):
            raise TypeError(f"{contract.__name__} is an event: register it with subscribes()")

        def register(func: F) -> F:
            exchange = None if group is None else self.exchange_of(contract)
            queue = (
                self.queue_of(contract) if group is None else self.group_queue_of(contract, group)
            )
            handler = self._dispatcher(contract, func, queue, group, self._command_codec)
            self.commands.declare(queue, exchange=exchange)
            self._register(
                queue,
                lambda: self.commands.consume(queue, handler, exchange=exchange),
                concurrency,
            )
            return func

        return register

    def subscribes(
        self,
        contract: type[Event],
        *,
        group: str,
        start: Start = "earliest",
        concurrency: int | None = None,
    ) -> Callable[[F], F]:
        """Register an event handler in consumer group ``group``. A new group starts at
        ``start``; a group that committed before resumes where it stopped."""
        if not issubclass(contract, Event):
            raise TypeError(f"{contract.__name__} is a command: register it with handles()")

        def register(func: F) -> F:
            topic = self.topic_of(contract)
            handler = self._dispatcher(contract, func, topic, group, self._event_codec)
            self._register(
                topic,
                lambda: self.events.subscribe(topic, group, handler, start=start),
                concurrency,
            )
            return func

        return register

    def handles_dead_letters(
        self, contract: type[Contract], *, group: str | None = None
    ) -> Callable[[Callable[[DeadLetterRecord], Any]], Callable[[DeadLetterRecord], Any]]:
        """Register a reader of the contract's dead-letter channel (for ``group``'s queue when
        given). The reader gets a DeadLetterRecord with the reason; it is never retried."""

        def register(func: Callable[[DeadLetterRecord], Any]) -> Callable[[DeadLetterRecord], Any]:
            if issubclass(contract, Event):
                channel = f"{self.topic_of(contract)}.dlq"
                reader = self._dead_letter_reader(func, self._event_codec)
                name = f"{group or 'interchange'}.dead-letters"
                self._register(channel, lambda: self.events.subscribe(channel, name, reader), 1)
            else:
                queue = (
                    self.queue_of(contract)
                    if group is None
                    else self.group_queue_of(contract, group)
                )
                channel = f"{queue}.dlq"
                reader = self._dead_letter_reader(func, self._command_codec)
                self.commands.declare(channel)
                self._register(channel, lambda: self.commands.consume(channel, reader), 1)
            return func

        return register

    def _dead_letter_reader(
        self, func: Callable[[DeadLetterRecord], Any], codec: Codec
    ) -> DeliveryHandler:
        def read(delivery: Delivery) -> Outcome:
            message = delivery.message
            headers = dict(message.headers)
            meta = {
                k: headers.pop(k, "") for k in (DLQ_REASON, DLQ_ERROR, DLQ_ATTEMPTS, DLQ_SOURCE)
            }
            try:
                envelope: Envelope | None = codec.decode(headers, message.body)
            except DecodeError:
                envelope = None
            func(
                DeadLetterRecord(
                    message=message,
                    reason=meta[DLQ_REASON],
                    error=meta[DLQ_ERROR],
                    attempts=int(meta[DLQ_ATTEMPTS] or 0),
                    source=meta[DLQ_SOURCE],
                    envelope=envelope,
                )
            )
            return ACK

        return read

    def _dispatcher(
        self,
        contract: type[Contract],
        func: HandlerFunc,
        channel: str,
        group: str | None,
        codec: Codec,
    ) -> Dispatcher:
        route = self.settings.route(contract.contract_name)
        return Dispatcher(
            bus=self,
            contract=contract,
            func=func,
            channel=channel,
            group=group,
            codec=codec,
            retry=route.retry or self.settings.retry,
            dedupe=self.dedupe,
            bare_json=route.bare_json,
        )

    def _register(
        self, channel: str, start_consumer: Callable[[], Subscription], concurrency: int | None
    ) -> None:
        registration = _Registration(
            channel, start_consumer, concurrency or self.settings.concurrency
        )
        with self._lock:
            self._registrations.append(registration)
            if self._running:  # registered while running: start it now
                self._running.extend(self._start(registration))

    # -- lifecycle ------------------------------------------------------------------------

    @staticmethod
    def _start(registration: _Registration) -> list[Subscription]:
        return [registration.start_consumer() for _ in range(registration.concurrency)]

    def start(self) -> Bus:
        """Start every registered handler's consumers on worker threads. Idempotent."""
        with self._lock:
            if not self._running:
                self._declare_broadcast_groups()
                for registration in self._registrations:
                    self._running.extend(self._start(registration))
        if self.drainer is not None:
            self.drainer.start()
        return self

    def _declare_broadcast_groups(self) -> None:
        for name, route in self.settings.routes.items():
            for group in route.groups:
                exchange = self._name(route.exchange or name)
                self.commands.declare(f"{exchange}.{group}", exchange=exchange)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consumers after the deliveries in hand; what is unhandled stays queued."""
        with self._lock:
            running, self._running = self._running, []
        if self.drainer is not None:
            self.drainer.stop()
        for subscription in running:
            subscription.close(timeout)

    def close(self) -> None:
        """Stop consumers, flush what was accepted and release the transports."""
        self.stop()
        self.commands.close()
        self.events.close()
        if self.drainer is not None:
            self.drainer.close()

    def failover_status(self) -> dict[str, dict[str, Any]]:
        """Per side: circuit state, spool depth, messages spooled and drained, drain rate."""
        return self.drainer.status() if self.drainer is not None else {}

    def __enter__(self) -> Bus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- encoding -------------------------------------------------------------------------

    def _encode(
        self,
        contract: Contract,
        codec: Codec,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        id: str | None = None,
    ) -> TransportMessage:
        envelope = Envelope.wrap(
            contract,
            source=self.settings.source,
            id=id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            partition_key=key,
            headers=headers,
        )
        wire_headers, body = codec.encode(envelope)
        return TransportMessage(envelope.id, body, wire_headers, key=key)


def _expect(contract: Contract, kind: type[Contract], verb: str, other: str) -> None:
    if not isinstance(contract, kind):
        raise TypeError(
            f"{type(contract).__name__} is {_article(contract.contract_kind)}: "
            f"use bus.{other}(), not bus.{verb}()"
        )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
