"""From contracts to transport messages: the envelope each verb wraps around a contract, the
records one publish writes (one per version its route lists), and the reply to a request.
Also the check that a verb was given the kind of contract it takes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from interchange.adapters import TransportMessage
from interchange.config import Settings
from interchange.contracts import Codec, Command, Contract, Envelope, Event, converters
from interchange.registrations import refuse_missing_key
from interchange.routing import Routing
from interchange.versions import EXTENSION


class Encoder:
    def __init__(self, settings: Settings, routing: Routing, commands: Codec, events: Codec):
        self.settings = settings
        self.routing = routing
        self.commands = commands
        self.events = events

    def command(self, command: Command, verb: str, **options: Any) -> TransportMessage:
        expect(command, Command, verb, "publish")
        return self.encode(command, self.commands, **options)

    def command_batch(
        self, commands: list[Command], ids: list[str] | None, options: dict[str, Any]
    ) -> list[TransportMessage]:
        """The messages of a batch of one contract's commands, with the given ids if any."""
        _one_contract(commands, ids, "send_many", "commands", "queue")
        if not options:  # the common case: one header template for the batch (Codec.encode_many)
            expect(commands[0], Command, "send_many", "publish_many")
            message_ids = _with_ids(ids, len(commands))
            keys: list[str | None] = [None] * len(commands)
            encoded = self.commands.encode_many(
                commands, message_ids, keys, source=self.settings.source
            )
            return [
                TransportMessage(message_id, body, headers)
                for message_id, (headers, body) in zip(message_ids, encoded, strict=True)
            ]
        given: list[str | None] = list(ids) if ids else [None] * len(commands)
        return [
            self.command(c, "send_many", **{**options, "id": i} if i else options)
            for c, i in zip(commands, given, strict=True)
        ]

    def command_chunks(
        self, commands: list[Command], ids: list[str] | None, options: dict[str, Any]
    ) -> tuple[list[str], Callable[[slice], list[TransportMessage]]]:
        """Every id of a batch of one contract's commands, and how to encode the messages of a
        part of it (chunks.py stores them a chunk at a time)."""
        _one_contract(commands, ids, "send_many", "commands", "queue")
        every = _with_ids(ids, len(commands))
        return every, lambda part: self.command_batch(commands[part], every[part], options)

    def event_chunks(
        self, events: list[Event], ids: list[str] | None, options: dict[str, Any], keys: Keys
    ) -> tuple[list[str], Callable[[slice], dict[str, list[TransportMessage]]]]:
        """Every id of a batch of one contract's events, and how to encode the records per
        topic of a part of it (chunks.py)."""
        _one_contract(events, ids, "publish_many", "events", "topic")
        if keys is not None and len(keys) != len(events):
            raise ValueError(f"publish_many got {len(keys)} keys for {len(events)} events")
        every = _with_ids(ids, len(events))
        return every, lambda part: self.event_batch(
            events[part], every[part], options, None if keys is None else keys[part]
        )[1]

    def event_batch(
        self,
        events: list[Event],
        ids: list[str] | None,
        options: dict[str, Any],
        keys: Keys = None,
    ) -> tuple[list[str], dict[str, list[TransportMessage]]]:
        """(ids, topic -> messages) of a batch of one contract's events."""
        _one_contract(events, ids, "publish_many", "events", "topic")
        if keys is not None and len(keys) != len(events):
            raise ValueError(f"publish_many got {len(keys)} keys for {len(events)} events")
        fast = self._one_version_batch(events, ids, options, keys)
        if fast is not None:
            return fast
        given: list[str | None] = list(ids) if ids else [None] * len(events)
        event_ids: list[str] = []
        per_topic: dict[str, list[TransportMessage]] = {}
        for n, (event, given_id) in enumerate(zip(events, given, strict=True)):
            own = dict(options)
            if given_id:
                own["id"] = given_id
            if keys is not None and keys[n] is not None:
                own["key"] = keys[n]
            event_id, records = self.event_records(event, own)
            event_ids.append(event_id)
            for topic, message in records:
                per_topic.setdefault(topic, []).append(message)
        return event_ids, per_topic

    def _one_version_batch(
        self, events: list[Event], ids: list[str] | None, options: dict[str, Any], keys: Keys
    ) -> tuple[list[str], dict[str, list[TransportMessage]]] | None:
        """The common case in one pass: one version on the wire and no per-call options. None
        when the batch needs the general path (dual publishing, headers, correlation)."""
        first = events[0]
        expect(first, Event, "publish_many", "send_many")
        route = self.settings.route(first.contract_name)
        if options or (route.versions and route.versions != [first.contract_version]):
            return None
        event_ids = _with_ids(ids, len(events))
        given: list[str | None] = list(keys) if keys is not None else [None] * len(events)
        if route.partition_key:
            field = route.partition_key
            try:
                given = [
                    k if k is not None else str(getattr(e, field))
                    for k, e in zip(given, events, strict=True)
                ]
            except AttributeError:
                refuse_missing_key(first, field)
                raise
        encoded = self.events.encode_many(events, event_ids, given, source=self.settings.source)
        messages = [
            TransportMessage(message_id, body, headers, key)
            for message_id, key, (headers, body) in zip(event_ids, given, encoded, strict=True)
        ]
        topic = self.routing.topic_of(type(first), first.contract_version)
        return event_ids, {topic: messages}

    def reply(self, request: Envelope, result: Contract) -> TransportMessage:
        envelope = Envelope.wrap(
            result,
            source=self.settings.source,
            correlation_id=request.id,
            causation_id=request.id,
        )
        headers, body = self.commands.encode(envelope)
        return TransportMessage(envelope.id, body, headers)

    def event_records(
        self, event: Event, options: dict[str, Any]
    ) -> tuple[str, list[tuple[str, TransportMessage]]]:
        """(id, [(topic, message)]) for every version the route publishes of this event."""
        expect(event, Event, "publish", "send")
        route = self.settings.route(event.contract_name)
        if route.partition_key and "key" not in options:
            try:
                options["key"] = str(getattr(event, route.partition_key))
            except AttributeError:
                refuse_missing_key(event, route.partition_key)
                raise
        versions = route.versions or [event.contract_version]
        base_id = options.pop("id", None) or next_id()
        headers = dict(options.pop("headers", None) or {})
        if len(versions) > 1:
            headers[self.events.prefix + EXTENSION] = ",".join(map(str, versions))
        records = []
        for version in versions:
            own = version == event.contract_version
            twin = event if own else converters.convert(event, version)
            twin_id = base_id if own else f"{base_id}.v{version}"
            message = self.encode(twin, self.events, id=twin_id, headers=headers, **options)
            records.append((self.routing.topic_of(type(event), version), message))
        return base_id, records

    def encode(
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
            id=id or next_id(),
            correlation_id=correlation_id,
            causation_id=causation_id,
            partition_key=key,
            headers=headers,
        )
        wire_headers, body = codec.encode(envelope)
        return TransportMessage(envelope.id, body, wire_headers, key=key)


Keys = Sequence[str | None] | None
"""Partition keys given one per event of a batch (None: the route's key, if any)."""


def _one_contract(
    batch: list[Any], ids: list[str] | None, verb: str, kind: str, channel: str
) -> None:
    if len({type(item) for item in batch}) != 1:
        raise TypeError(f"{verb} takes {kind} of one contract (one {channel}) per call")
    if ids is not None and len(ids) != len(batch):
        raise ValueError(f"{verb} got {len(ids)} ids for {len(batch)} {kind}")


def expect(contract: Contract, kind: type[Contract], verb: str, other: str) -> None:
    """A TypeError unless ``contract`` is a ``kind`` (a command for send, an event for
    publish), saying which verb to use instead."""
    if not isinstance(contract, Contract):
        raise TypeError(
            f"bus.{verb}() takes {_article(kind.__name__.lower())}, not "
            f"{type(contract).__name__}: declare it as class X({kind.__name__}, name=..., "
            "version=...) and pass an instance"
        )
    if not isinstance(contract, kind):
        raise TypeError(
            f"{type(contract).__name__} is {_article(contract.contract_kind)}: "
            f"use bus.{other}(), not bus.{verb}()"
        )


def expect_class(contract: Any, kind: type[Contract], verb: str, other: str) -> None:
    """A TypeError unless ``contract`` is a ``kind`` class (a Command for handles, an Event
    for subscribes), saying what was expected."""
    if not (isinstance(contract, type) and issubclass(contract, Contract)):
        raise TypeError(
            f"bus.{verb}() takes {_article(kind.__name__.lower())} class declared as "
            f"class X({kind.__name__}, name=..., version=...), not {contract!r}"
        )
    if not issubclass(contract, kind):
        raise TypeError(
            f"{contract.__name__} is {_article(contract.contract_kind)}: "
            f"register it with {other}(), not {verb}()"
        )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def new_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs, as ``str(uuid.uuid4())`` writes them, from one read
    of the OS's random source: ``uuid4()`` reads it once per id, a system call that was a third
    of ``publish_many``'s time (py-spy). The bytes are turned to hex in one call too, and each
    id cut from it with its version and variant digits set (18% of ``publish_many`` when each
    id was fixed and hexed on its own)."""
    digits = os.urandom(16 * count).hex()
    variant = _VARIANT
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
        for h in (digits[start : start + 32] for start in range(0, 32 * count, 32))
    ]


_VARIANT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}
"""The RFC 4122 variant (binary 10xx) set in an id's 17th hex digit, keeping its low bits."""

_POOL: list[str] = []
_POOL_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_POOL.clear)  # a child must never hand out its parent's ids


def next_id() -> str:
    """A fresh random id, as ``str(uuid.uuid4())`` writes it, taken from a pool that
    ``new_ids`` refills 256 at a time: a ``uuid4()`` per message read the OS's random source
    each time (2.6 µs; a quarter of a ``bus.batch()`` loop's time per call, measured)."""
    while True:
        try:
            return _POOL.pop()  # atomic: two threads never take the same id
        except IndexError:
            with _POOL_LOCK:
                if not _POOL:
                    _POOL.extend(new_ids(256))


def _with_ids(given: Sequence[str | None] | None, count: int) -> list[str]:
    """The given ids, a fresh one wherever none is given."""
    if not given:
        return new_ids(count)
    fresh = iter(new_ids(sum(1 for i in given if not i)))
    return [i or next(fresh) for i in given]
