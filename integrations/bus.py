"""Bus: the one facade, the only place that knows both contracts and transports."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from interchange.adapters import (
    CommandTransport,
    EventTransport,
    Start,
    Subscription,
    open_commands,
    open_events,
)
from interchange.batch import Batch
from interchange.chunks import publish_per_topic, stored_in_chunks
from interchange.config import RetryPolicy, Settings, load_settings
from interchange.contracts import (
    Codec,
    Command,
    Contract,
    DecodeError,
    Envelope,
    Event,
    Registry,
    registry,
)
from interchange.dead_letters import dead_letter_reader
from interchange.dedupe import DedupeStore, open_dedupe
from interchange.dispatch import Dispatcher, dedupe_scope
from interchange.drain import Drainer, with_fallback
from interchange.encoding import Encoder, Keys, expect_class
from interchange.handlers import EventLoops, as_handler, as_reader
from interchange.metrics import Metrics, metered
from interchange.registrations import Admission
from interchange.routing import Routing
from interchange.runtime import DEFAULT_GRACE, serve
from interchange.tracing import consumer_tracing, traced
from interchange.versions import read_back
from interchange.workers import Handler, Registration, Workers

C = TypeVar("C", bound=Contract)
F = TypeVar("F", bound=Callable[..., Any])


class Bus(Routing):
    """The one facade: commands (``send``, ``send_many``, ``broadcast``, ``request``) and
    events (``publish``, ``publish_many``, ``replay``, ``seek``) over the backends its settings
    name, and the handlers registered with ``handles``, ``subscribes``, ``handles_dead_letters``,
    run on worker threads from ``start()`` to ``stop()``. A publishing verb returns the id once
    a broker, or the fallback spool, stored the message, else raises a TransportError. Any verb
    may be called from any thread. ``close()`` stops the consumers, releases the transports."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        commands: CommandTransport | None = None,
        events: EventTransport | None = None,
        contracts: Registry = registry,
        dedupe: DedupeStore | None = None,
    ) -> None:
        super().__init__(settings or Settings())  # the names: queue_of, topic_of, ...
        self.contracts = contracts
        self.commands = commands or open_commands(self.settings.backends.commands)
        self.events = events or open_events(self.settings.backends.events)
        self.drainer: Drainer | None = None
        if self.settings.backends.fallback:
            self.commands, self.events, self.drainer = with_fallback(
                self.settings, self.commands, self.events
            )
        self.meters = Metrics()  # what this Bus counted: metrics(), the ops port's /metrics
        self.commands, self.events = metered(self.commands, self.grouped(self.events), self.meters)
        self.commands, self.events = traced(self.commands, self.events, self.settings.tracing)
        self.dedupe = dedupe or open_dedupe(self.settings.dedupe, ttl=self.settings.dedupe_ttl)
        self._command_codec = self._codec(self.commands.capabilities.header_prefix)
        self._event_codec = self._codec(self.events.capabilities.header_prefix)
        self.encoder = Encoder(self.settings, self, self._command_codec, self._event_codec)
        self.workers = Workers(self.meters.in_flight)
        self._checks = Admission(self.settings, self.events.capabilities, contracts)
        self.handlers: list[Handler] = self._checks.handlers  # as registered, checked
        self._loops = EventLoops()

    @classmethod
    def from_config(
        cls, config: str | Path | Mapping[str, Any] | Settings | None = None, **options: Any
    ) -> Bus:
        """A Bus from ``interchange.toml``, a YAML file, a dict or Settings; ``INTERCHANGE_*``
        environment variables override what the file says."""
        return cls(load_settings(config), **options)

    def _codec(self, prefix: str) -> Codec:
        return Codec(prefix, contracts=self.contracts, max_body_bytes=self.settings.max_body_bytes)

    # -- commands -------------------------------------------------------------------------

    def send(self, command: Command, **options: Any) -> str:
        """Send a command to its queue; one consumer handles it. Returns the message id once
        the backend stored it; raises a TransportError otherwise."""
        message = self.encoder.command(command, "send", **options)
        self.commands.send(self.queue_of(type(command)), message)
        return message.id

    def send_many(
        self, commands: list[Command], *, ids: list[str] | None = None, **options: Any
    ) -> list[str]:
        """Send commands of one contract in order, confirms pipelined; ``ids`` gives their ids.
        Returns them once all were stored; the error's ``failed`` lists those that were not."""
        if not commands:
            return []
        queue = self.queue_of(type(commands[0]))
        every, encode = self.encoder.command_chunks(commands, ids, options)
        stored_in_chunks(every, encode, lambda messages: self.commands.send_many(queue, messages))
        return every

    def broadcast(self, command: Command, **options: Any) -> str:
        """Copy a command to every subscribing group. Raises PublishRejected when no group is
        bound: an unroutable command is an error."""
        message = self.encoder.command(command, "broadcast", **options)
        self.commands.broadcast(self.exchange_of(type(command)), message)
        return message.id

    def request(
        self, command: Command, *, timeout: float | None = None, **options: Any
    ) -> Contract:
        """Send a command and wait for the handler's reply. Raises RequestTimeout."""
        message = self.encoder.command(command, "request", **options)
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
        self.commands.reply(reply_to, self.encoder.reply(request, result))

    # -- events ---------------------------------------------------------------------------

    def publish(self, event: Event, **options: Any) -> str:
        """Append an event to its topic's log — once per version the route lists, each derived
        by the registered converters. Returns its id once the backend stored every record."""
        event_id, records = self.encoder.event_records(event, options)
        for topic, message in records:
            self.events.publish(topic, message)
        return event_id

    def publish_many(
        self, events: list[Event], *, ids: list[str] | None = None, keys: Keys = None, **opts: Any
    ) -> list[str]:
        """Append events of one contract, acknowledgements awaited once; ``ids`` and ``keys``
        give their ids and partition keys. Returns the ids once all were stored (see above)."""
        if not events:
            return []
        every, encode = self.encoder.event_chunks(events, ids, opts, keys)
        stored_in_chunks(every, encode, lambda per_topic: publish_per_topic(self.events, per_topic))
        return every

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
        deliveries = self.events.replay(self.topic_of(contract), since=start, until=until)
        return read_back(deliveries, contract, self._event_codec, on_error)  # type: ignore[return-value]

    def seek(self, contract: type[Event], group: str, to: Start) -> None:
        """Move a consumer group's position, e.g. back to reprocess. The group's handled ids
        are forgotten, so the records it reads again reach its handler again."""
        topic = self.topic_of(contract)
        self.events.seek(topic, group, to)
        self.dedupe.forget(dedupe_scope(topic, group))

    # -- handlers -------------------------------------------------------------------------
    # Registering is pure: nothing reaches a broker before start() (consuming declares).

    def handles(
        self,
        contract: type[Command],
        *,
        group: str | None = None,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[F], F]:
        """Register a command handler, ``(msg)`` or ``(msg, ctx)``, plain or ``async def``.
        Without ``group`` it competes for the contract's queue (point-to-point); with
        ``group`` that group gets its own copy of every broadcast. ``retry`` overrides the
        route's policy for this handler."""
        expect_class(contract, Command, "handles", "subscribes")

        def register(func: F) -> F:
            exchange = None if group is None else self.exchange_of(contract)
            queue = self.group_queue_of(contract, group) if group else self.queue_of(contract)
            self._checks.admit(queue, Handler("handles", contract, func, group, concurrency, retry))
            handler = self._dispatcher(contract, func, queue, group, self._command_codec, retry)
            consume = functools.partial(self.commands.consume, queue, handler, exchange=exchange)
            count = concurrency or self.settings.concurrency
            self.workers.register(Registration(queue, consume, count))
            return func

        return register

    def subscribes(
        self,
        contract: type[Event],
        *,
        group: str,
        start: Start = "earliest",
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[F], F]:
        """Register an event handler, ``(msg)`` or ``(msg, ctx)``, plain or ``async def``, in
        consumer group ``group``. A new group starts at ``start``; a group that committed before
        resumes where it stopped. ``concurrency`` handlers run at once, in order per partition
        key: a retried event holds only its own key. ``retry`` overrides the route's policy."""
        expect_class(contract, Event, "subscribes", "handles")

        def register(func: F) -> F:
            topic = self.topic_of(contract)
            registered = Handler("subscribes", contract, func, group, concurrency, retry, start)
            self._checks.admit(topic, registered)
            handler = self._dispatcher(contract, func, topic, group, self._event_codec, retry)
            # one group member whose workers keep order per partition key (adapters/keyed.py)
            workers = concurrency or self.settings.concurrency
            join = functools.partial(
                self.events.subscribe, topic, group, handler, start=start, workers=workers
            )
            self.workers.register(Registration(topic, join, 1))
            return func

        return register

    def handles_dead_letters(
        self, contract: type[Contract], *, group: str | None = None
    ) -> Callable[[F], F]:
        """Register a reader of the contract's dead-letter channel (for ``group``'s queue when
        given): ``(record)``, plain or ``async def``, given a DeadLetterRecord with the reason.
        A reader that raises is retried like a handler, then its dead letter moves on to the
        channel's own ``.dlq``."""
        expect_class(contract, Contract, "handles_dead_letters", "handles_dead_letters")

        def register(func: F) -> F:
            channel = self.dead_letter_channel_of(contract, group)
            self._checks.admit(channel, Handler("handles_dead_letters", contract, func, group))
            reader = self.meters.in_flight.counted(as_reader(func, self._loops))
            retry = self.settings.route(contract.contract_name).retry or self.settings.retry
            start: Callable[[], Subscription]
            if issubclass(contract, Event):
                read = dead_letter_reader(reader, self._event_codec, retry)
                name = f"{group or 'interchange'}.dead-letters"
                start = functools.partial(self.events.subscribe, channel, name, read)
            else:
                read = dead_letter_reader(reader, self._command_codec, retry)
                start = functools.partial(self.commands.consume, channel, read)
            self.workers.register(Registration(channel, start, 1))
            return func

        return register

    def _dispatcher(
        self,
        contract: type[Contract],
        func: Callable[..., Any],
        channel: str,
        group: str | None,
        codec: Codec,
        retry: RetryPolicy | None,
    ) -> Dispatcher:
        route = self.settings.route(contract.contract_name)
        side = self.events if codec is self._event_codec else self.commands
        return Dispatcher(
            sender=self,
            reply=self._reply,
            contract=contract,
            func=as_handler(func, self._loops),
            channel=channel,
            group=group,
            codec=codec,
            retry=retry or route.retry or self.settings.retry,
            dedupe=self.dedupe,
            bare_json=route.bare_json,
            meter=self.meters.meter(channel, group),
            tracing=consumer_tracing(side, self.settings.tracing),
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Bus:
        """Check the routes, then start every handler's consumers on worker threads. Idempotent."""
        self._checks.check_routes()
        self.workers.start(prepare=self._declare_broadcast_groups)
        if self.drainer is not None and self.workers.started:  # (not when stopped meanwhile)
            self.drainer.start()
        return self

    def _declare_broadcast_groups(self) -> None:
        for queue, exchange in self.declared_groups():
            self.commands.declare(queue, exchange=exchange)

    def batch(self, max_pending: int = 10_000) -> Batch:  # with bus.batch() as b: b.send(...)
        return Batch(self, max_pending)  # no wait per message; stored at the end (batch.py)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop consumers after the deliveries in hand, within ``timeout`` seconds in all;
        the unhandled stay queued. True when every handler finished in time."""
        if self.drainer is not None:
            self.drainer.stop()
        finished = self.workers.stop(timeout)
        if finished:
            self._loops.close()
        return finished

    def run_forever(self, grace: float = DEFAULT_GRACE) -> bool:
        """Start; serve until SIGTERM/SIGINT, then let handlers in flight finish within
        ``grace`` seconds and close (a second signal: at once). True if all finished in time."""
        return serve(self, grace)

    def close(self) -> None:
        """Stop consumers, flush what was accepted and release the transports."""
        self.stop()
        self.commands.close()
        self.events.close()
        if self.drainer is not None:
            self.drainer.close()

    def metrics(self) -> dict[str, dict[str, Any]]:
        """What this Bus counted, per ``"<channel>|<group>"`` (interchange.metrics)."""
        return self.meters.snapshot()

    def failover_status(self) -> dict[str, dict[str, Any]]:
        """Per side: circuit state, spool depth, messages spooled and drained, drain rate."""
        return self.drainer.status() if self.drainer is not None else {}

    def __enter__(self) -> Bus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
