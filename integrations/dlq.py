"""What an operator does with dead letters (``interchange dlq``): list them, requeue them onto
the queue or topic they were given up on — ids kept, so consumers still dedupe, and attempts
reset — or purge them. Through the transports' ``sweep`` (adapters.SweepsDeadLetters), which
goes through a dead-letter channel without a consumer group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from interchange.adapters import SweepsDeadLetters, TransportMessage, Verdict
from interchange.adapters.message import ATTEMPT_HEADER
from interchange.bus import Bus
from interchange.contracts import Codec, Contract, Event
from interchange.dead_letters import DEAD_LETTER_HEADERS, DeadLetterRecord, read_record


@dataclass(frozen=True)
class Selection:
    """Which dead letters of a contract an operator means."""

    group: str | None = None
    """Commands: that broadcast group's queue (default: the contract's queue). Events: only
    those this consumer group gave up (default: every group's)."""
    since: datetime | None = None
    """Only those given up at or after this time."""
    limit: int | None = None
    """At most this many, oldest first."""
    ids: frozenset[str] | None = None
    """Only these message ids."""

    def matches(self, record: DeadLetterRecord, events: bool) -> bool:
        if self.ids is not None and record.message.id not in self.ids:
            return False
        if events and self.group is not None and record.group != self.group:
            return False
        return self.since is None or (record.time is not None and record.time >= self.since)


def channel_of(bus: Bus, contract: type[Contract], selection: Selection) -> str:
    """The dead-letter channel ``selection`` means: the topic's ``.dlq`` for an event (shared
    by its groups), the queue's — or the broadcast group's queue's — for a command."""
    group = None if issubclass(contract, Event) else selection.group
    return bus.dead_letter_channel_of(contract, group)


def origin_of(bus: Bus, contract: type[Contract], selection: Selection) -> str:
    """Where a requeue puts them back: the dead-letter channel's name without ``.dlq``."""
    return channel_of(bus, contract, selection).removesuffix(".dlq")


def sweep(
    bus: Bus,
    contract: type[Contract],
    selection: Selection,
    act: Callable[[DeadLetterRecord], Verdict],
) -> int:
    """Go through the contract's dead letters (bus.dead_letter_channel_of), calling ``act`` on
    each one ``selection`` matches, at most ``selection.limit``; returns how many it took."""
    events = issubclass(contract, Event)
    side = bus.events if events else bus.commands
    if not isinstance(side, SweepsDeadLetters):
        raise TypeError(f"{type(side).__name__} cannot go through dead letters")
    codec = Codec(
        side.capabilities.header_prefix,
        contracts=bus.contracts,
        max_body_bytes=bus.settings.max_body_bytes,
    )
    channel = channel_of(bus, contract, selection)
    left = [selection.limit if selection.limit is not None else -1]

    def decide(message: TransportMessage) -> Verdict:
        if left[0] == 0:
            return "stop"
        record = read_record(message, codec)
        if not selection.matches(record, events):
            return "keep"
        left[0] -= 1
        return act(record)

    return side.sweep(channel, decide)


def dead_letters(
    bus: Bus, contract: type[Contract], selection: Selection | None = None
) -> list[DeadLetterRecord]:
    """The contract's dead letters, oldest first, left where they are."""
    found: list[DeadLetterRecord] = []

    def keep(record: DeadLetterRecord) -> Verdict:
        found.append(record)
        return "keep"

    sweep(bus, contract, selection or Selection(), keep)
    return found


def requeue(
    bus: Bus,
    contract: type[Contract],
    selection: Selection | None = None,
    progress: Callable[[DeadLetterRecord], None] | None = None,
) -> int:
    """Put the contract's dead letters back on the queue or topic they were given up on
    (the dead-letter channel's name without ``.dlq``), with their ids, keys, headers and trace
    context kept and their attempts reset; each leaves the dead-letter channel only once the
    broker (or the fallback spool) stored it again. Returns how many."""
    events = issubclass(contract, Event)
    chosen = selection or Selection()
    origin = origin_of(bus, contract, chosen)

    def back(record: DeadLetterRecord) -> Verdict:
        message = record.message
        headers = {
            k: v
            for k, v in message.headers.items()
            if k not in DEAD_LETTER_HEADERS and k != ATTEMPT_HEADER
        }
        again = replace(message, headers=headers, reply_to=None)  # its requester is long gone
        if events:
            bus.events.publish(origin, again)
        else:
            bus.commands.send(origin, again)
        if progress is not None:
            progress(record)
        return "take"

    return sweep(bus, contract, chosen, back)


def purge(
    bus: Bus,
    contract: type[Contract],
    selection: Selection | None = None,
    progress: Callable[[DeadLetterRecord], None] | None = None,
) -> int:
    """Remove the contract's dead letters for good. Returns how many."""

    def drop(record: DeadLetterRecord) -> Verdict:
        if progress is not None:
            progress(record)
        return "take"

    return sweep(bus, contract, selection or Selection(), drop)
