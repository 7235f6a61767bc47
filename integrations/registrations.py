"""What a Bus refuses to register, and what it checks of its routes, so that a mistake which
used to pass silently fails when it is made, not when messages go missing.

When each check runs, and why then:

- Registering (``handles``, ``subscribes``, ``handles_dead_letters``): the handler itself (not
  a generator function), one handler per channel and group on one Bus (DuplicateHandler: two
  would compete, each taking part of the messages), ``start`` (a place the backend can start
  from) and the route's partition key (a field of the contract being registered).
- Building the Bus: the partition key of every route whose contract is already declared —
  contracts are declared by importing their classes, usually before the Bus is built.
- Starting the Bus: every route names a declared contract. Only then: a service imports the
  modules that declare its contracts before it starts, not necessarily before it builds its
  Bus or registers. An unknown name is a ConfigurationWarning, not an error, since one
  configuration file may serve several services that each declare only their own contracts.
- Publishing: a key field missing from the published event's class is an InvalidRoute (the
  last line, for a service that publishes without starting).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from interchange.adapters import Capabilities, ConfigurationError, Position
from interchange.adapters.urls import did_you_mean
from interchange.config import Settings
from interchange.contracts import Contract, Event, Registry
from interchange.environment import ConfigurationWarning
from interchange.handlers import check_handler, check_reader
from interchange.workers import Handler

STARTS = ("earliest", "latest")


class DuplicateHandler(ValueError):
    """A second handler for a channel and group that one Bus already consumes."""


class InvalidRoute(ConfigurationError):
    """A route that cannot work with its contract: a partition key the contract lacks, or (on
    Redis) a queue named like an exchange's stream."""


_BROADCAST_STREAM = ":broadcast"
"""What ends the name of a Redis exchange's stream (adapters/redis/transport.py's
``exchange_stream``): a queue named so would be that stream, sends and broadcasts mixed."""


class Admission:
    """The checks a Bus runs before it records a registration, and when it starts."""

    def __init__(self, settings: Settings, events: Capabilities, contracts: Registry) -> None:
        self.settings, self.events, self.contracts = settings, events, contracts
        self.handlers: list[Handler] = []
        """Every handler admitted, as registered (``interchange.testing.isolated`` copies them
        onto a Bus of its own)."""
        self._owners: dict[tuple[str, str | None], Handler] = {}
        self._lock = threading.Lock()
        for name, route in settings.routes.items():
            if route.partition_key and contracts.versions(name):
                check_partition_key(name, route.partition_key, self._declared(name))
            if route.queue:
                check_queue(settings, route.queue, f'routes."{name}".queue')

    def admit(self, channel: str, handler: Handler) -> None:
        """Check ``handler`` for ``channel``, then record it; raises TypeError, ValueError,
        DuplicateHandler or InvalidRoute, saying what to do instead, with nothing recorded."""
        if handler.verb == "handles_dead_letters":
            check_reader(handler.func)
        else:
            check_handler(handler.func)
        if handler.verb == "subscribes":
            check_start(handler.start, self.events)
        name = handler.contract.contract_name
        key = self.settings.route(name).partition_key
        if key and issubclass(handler.contract, Event):
            check_partition_key(name, key, {handler.contract, *self._declared(name)})
        with self._lock:
            owner = self._owners.get((channel, handler.group))
            if owner is not None:
                raise DuplicateHandler(_competing(channel, owner, handler))
            self._owners[(channel, handler.group)] = handler
            self.handlers.append(handler)

    def check_routes(self) -> None:
        """At start: a ConfigurationWarning, with a did-you-mean, for every route that names
        no declared contract; an InvalidRoute for a partition key no version of its contract
        has."""
        known = sorted({model.contract_name for model in self.contracts.all()})
        for name, route in self.settings.routes.items():
            if name not in known:
                guess = did_you_mean(name, known)
                hint = f"; did you mean {guess!r}?" if guess else ""
                warnings.warn(
                    f'routes."{name}" names no contract declared in this process{hint} '
                    "(a route applies to the contract whose name= it repeats)",
                    ConfigurationWarning,
                    stacklevel=3,
                )
            elif route.partition_key:
                check_partition_key(name, route.partition_key, self._declared(name))

    def _declared(self, name: str) -> list[type[Contract]]:
        return [self.contracts.get(name, version) for version in self.contracts.versions(name)]


def check_start(start: Any, events: Capabilities) -> None:
    """A ValueError (with a did-you-mean) or TypeError unless ``start`` is a place a new
    consumer group can start on this backend: 'earliest', 'latest', a datetime, a Position, or
    an offset (int >= 0) where records are numbered."""
    forms = "'earliest', 'latest', a datetime, a Position" + (
        " or an offset (int >= 0)" if events.offsets else ""
    )
    if isinstance(start, str):
        if start not in STARTS:
            guess = did_you_mean(start, STARTS)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise ValueError(f"start={start!r} names no place to start{hint} (start takes {forms})")
    elif isinstance(start, bool) or not isinstance(start, int | datetime | Position):
        raise TypeError(f"start={start!r} is no place to start: start takes {forms}")
    elif isinstance(start, int):
        if not events.offsets:
            raise TypeError(
                f"start={start} is an offset, but this event backend does not number its "
                f"records: start takes {forms}"
            )
        if start < 0:
            raise ValueError(f"start={start}: an offset is 0 or more (start takes {forms})")


def check_queue(settings: Settings, queue: str, where: str) -> None:
    """An InvalidRoute when commands go over Redis and ``queue`` is named like the stream of
    an exchange: exchange ``shared`` broadcasts to the stream ``shared:broadcast``, so a queue
    of that name would receive its broadcasts, and its consumers delete them."""
    scheme = settings.backends.commands.partition(":")[0].lower()
    if scheme in ("redis", "rediss") and queue.endswith(_BROADCAST_STREAM):
        exchange = queue.removesuffix(_BROADCAST_STREAM)
        raise InvalidRoute(
            f"{where} = {queue!r}: on Redis a queue's name cannot end in {_BROADCAST_STREAM!r}, "
            f"the stream of exchange {exchange!r}'s broadcasts is named so (name the queue "
            "otherwise)"
        )


def check_partition_key(name: str, key: str, models: Iterable[type[Contract]]) -> None:
    """An InvalidRoute, with a did-you-mean, unless some declared version of the contract
    ``name`` has the field (or property) ``key`` that its route names as partition key."""
    models = list(models)
    if any(key in fields_of(model) for model in models):
        return
    fields = sorted({field for model in models for field in fields_of(model)})
    raise InvalidRoute(missing_key(name, key, fields))


def missing_key(name: str, key: str, fields: list[str]) -> str:
    guess = did_you_mean(key, fields)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return (
        f'routes."{name}".partition_key = {key!r} names no field of {name}{hint} '
        f"(its fields: {', '.join(fields) or 'none'})"
    )


def fields_of(model: type[Contract]) -> set[str]:
    """What ``getattr(event, name)`` can read of an instance: fields, computed fields,
    properties."""
    properties = {
        name
        for klass in model.__mro__[: model.__mro__.index(BaseModel)]  # not pydantic's own
        for name, value in vars(klass).items()
        if isinstance(value, property)
    }
    return {*model.model_fields, *model.model_computed_fields, *properties}


def refuse_missing_key(event: Event, key: str) -> None:
    """Raises InvalidRoute, naming the fields it has, when ``event`` lacks the field its
    route names as partition key (called on an AttributeError, so it costs a publish nothing;
    an AttributeError raised inside a property of that name is left to propagate)."""
    fields = fields_of(type(event))
    if key not in fields:
        raise InvalidRoute(missing_key(event.contract_name, key, sorted(fields)))


def _competing(channel: str, owner: Handler, handler: Handler) -> str:
    contract = owner.contract.__name__  # the one already there (routes may share a queue)
    name = getattr(owner.func, "__qualname__", repr(owner.func))
    if handler.verb == "handles_dead_letters":
        return f"{channel!r} already has a dead-letter reader on this Bus ({name})"
    if handler.verb == "subscribes":
        where = f"consumer group {handler.group!r} of topic {channel!r}"
    elif handler.group is not None:
        where = f"broadcast group {handler.group!r} (queue {channel!r})"
    else:
        where = f"queue {channel!r}"
    if owner.func is handler.func:
        return (
            f"{name} already handles {contract} from {where} on this Bus: registering it again "
            "would only add a consumer; pass concurrency=N for more"
        )
    if handler.verb == "subscribes":
        split = "two handlers in one group split the events between them, neither sees all"
        fix = "give each handler a group= of its own: each group reads every event"
    elif handler.group is None:
        split = "a second handler would compete with it, each taking part of the commands"
        fix = (
            "give each handler a group= of its own, so each group gets a copy of every "
            "broadcast (bus.broadcast); for more consumers of one handler pass concurrency=N"
        )
    else:
        split = "two handlers in one group compete for the group's copies"
        fix = "give each handler a group= of its own"
    return f"{where} already has a handler for {contract} on this Bus ({name}): {split}; {fix}"
