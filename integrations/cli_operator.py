"""The operator's commands: ``dlq list|show|requeue|purge``, ``replay`` and ``tail`` — reading
and mending what is on the brokers, without joining any consumer group."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interchange.cli_options import (
    ConfigOption,
    ModulesOption,
    console,
    contract_named,
    err_console,
    when,
)
from interchange.config import load_settings

if TYPE_CHECKING:
    from interchange.bus import Bus
    from interchange.dead_letters import DeadLetterRecord
    from interchange.dlq import Selection

dlq_app = typer.Typer(
    no_args_is_help=True,
    help="A contract's dead letters: list, show, requeue onto their source, purge.",
)

ContractArgument = Annotated[str, typer.Argument(help="the contract's name")]
GroupOption = Annotated[
    str | None,
    typer.Option(
        "--group", "-g", help="commands: that broadcast group's queue; events: that group's only"
    ),
]
SinceOption = Annotated[
    str | None, typer.Option(help="only those given up at or after this ISO 8601 time")
]
LimitOption = Annotated[int | None, typer.Option(min=1, help="at most this many, oldest first")]
IdsOption = Annotated[list[str] | None, typer.Option("--id", help="only this message id")]


@contextmanager
def _bus_for(name: str, config: Any, modules: list[str] | None) -> Iterator[tuple[Bus, type[Any]]]:
    from interchange.bus import Bus

    settings = load_settings(config)
    model = contract_named(name, settings, modules)
    bus = Bus(settings)
    try:
        yield bus, model
    finally:
        bus.close()


def _selection(
    group: str | None, since: str | None, limit: int | None, ids: list[str] | None
) -> Selection:
    from interchange.dlq import Selection

    return Selection(
        group=group,
        since=when(since) if since else None,
        limit=limit,
        ids=frozenset(ids) if ids else None,
    )


def _shown(record: DeadLetterRecord) -> dict[str, Any]:
    """A dead letter in full, as one JSON object: what an operator needs to decide."""
    from interchange.dead_letters import DEAD_LETTER_HEADERS

    message = record.message
    shown: dict[str, Any] = {
        "id": message.id,
        "dead_lettered_at": record.time.isoformat() if record.time else None,
        "group": record.group or None,
        "source": record.source,
        "attempts": record.attempts,
        "error": record.error,
        "reason": record.reason,
        "key": message.key,
        "headers": {k: v for k, v in message.headers.items() if k not in DEAD_LETTER_HEADERS},
    }
    if record.envelope is not None:
        shown["contract"] = f"{record.envelope.type} v{record.envelope.version}"
        shown["data"] = record.envelope.data.model_dump(mode="json")
    else:  # never decoded: show the bytes as they are
        try:
            shown["body"] = message.body.decode("utf-8")
        except UnicodeDecodeError:
            shown["body_base64"] = base64.b64encode(message.body).decode("ascii")
    return shown


@dlq_app.command("list")
def dlq_list(
    contract: ContractArgument,
    config: ConfigOption = None,
    module: ModulesOption = None,
    group: GroupOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
) -> None:
    """A table of the contract's dead letters, oldest first: id, when, group, attempts, error
    and reason. Nothing is moved (on RabbitMQ each is taken and returned: it counts as
    redelivered)."""
    from rich.table import Table

    from interchange.dlq import dead_letters

    with _bus_for(contract, config, module) as (bus, model):
        records = dead_letters(bus, model, _selection(group, since, limit, None))
        table = Table(title=f"dead letters of {contract} ({len(records)})")
        groups = any(record.group for record in records)  # events only
        for column in ("id", "dead-lettered (UTC)", *(["group"] * groups), "tries", "reason"):
            table.add_column(column, overflow="fold")
        for record in records:
            at = record.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if record.time else "?"
            group_cell = [record.group] if groups else []
            # the reason starts with the error type when an exception gave it up
            reason = (
                record.reason
                if record.reason.startswith(record.error)
                else (f"{record.error}: {record.reason}")
            )
            table.add_row(record.message.id, at, *group_cell, str(record.attempts), reason)
        console.print(table)


@dlq_app.command("show")
def dlq_show(
    contract: ContractArgument,
    config: ConfigOption = None,
    module: ModulesOption = None,
    ids: IdsOption = None,
    group: GroupOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
) -> None:
    """The contract's dead letters in full, one JSON object a line: headers, body (decoded
    when it can be), reason, error, attempts, when, from where."""
    from interchange.dlq import dead_letters

    with _bus_for(contract, config, module) as (bus, model):
        for record in dead_letters(bus, model, _selection(group, since, limit, ids)):
            sys.stdout.write(json.dumps(_shown(record)) + "\n")
        sys.stdout.flush()


def _with_progress(verb: str, act: Callable[[Callable[[Any], None]], int]) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"{verb} 0", total=None)
        done = [0]

        def step(record: Any) -> None:
            done[0] += 1
            bar.update(task, description=f"{verb} {done[0]}")

        return act(step)


@dlq_app.command("requeue")
def dlq_requeue(
    contract: ContractArgument,
    config: ConfigOption = None,
    module: ModulesOption = None,
    ids: IdsOption = None,
    group: GroupOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
) -> None:
    """Put dead letters back on the queue or topic they were given up on, ids kept (consumers
    that handled one already drop it) and attempts reset; each leaves the dead-letter channel
    once the broker stored it again."""
    from interchange.dlq import origin_of, requeue

    with _bus_for(contract, config, module) as (bus, model):
        chosen = _selection(group, since, limit, ids)
        count = _with_progress("requeued", lambda step: requeue(bus, model, chosen, step))
        console.print(f"requeued {count} dead letter(s) onto {origin_of(bus, model, chosen)}")


@dlq_app.command("purge")
def dlq_purge(
    contract: ContractArgument,
    config: ConfigOption = None,
    module: ModulesOption = None,
    ids: IdsOption = None,
    group: GroupOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Remove dead letters for good (on Kafka: mark them settled; the log keeps its records
    until retention)."""
    from interchange.dlq import purge

    if not yes:
        typer.confirm(f"remove the selected dead letters of {contract} for good?", abort=True)
    with _bus_for(contract, config, module) as (bus, model):
        chosen = _selection(group, since, limit, ids)
        count = _with_progress("purged", lambda step: purge(bus, model, chosen, step))
        console.print(f"purged {count} dead letter(s) of {contract}")


def replay(
    contract: Annotated[str, typer.Argument(help="the event contract's name")],
    config: ConfigOption = None,
    module: ModulesOption = None,
    since: Annotated[str, typer.Option(help="earliest, or an ISO 8601 time")] = "earliest",
    until: Annotated[str | None, typer.Option(help="an ISO 8601 time (default: now)")] = None,
    version: Annotated[
        int | None, typer.Option(help="read as this version (default: newest)")
    ] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="print the events as JSON lines")] = False,
    to_group: Annotated[
        str | None, typer.Option(help="re-deliver from --since to this consumer group instead")
    ] = None,
) -> None:
    """Read a window of an event log again, without joining a group or moving any offset
    (--jsonl: one event a line on stdout), or re-deliver it to one consumer group (--to-group:
    the group, with no member running, is moved back to --since; what it reads again reaches
    its handlers again)."""
    from interchange.bus import Bus
    from interchange.contracts import Event

    if jsonl == (to_group is not None):
        raise ValueError("say --jsonl (print the window) or --to-group G (re-deliver it)")
    settings = load_settings(config)
    model = contract_named(contract, settings, module, version)
    if not issubclass(model, Event):
        raise ValueError(f"{contract!r} is not an event contract declared by the given modules")
    start, end = when(since), when(until)
    bus = Bus(settings)
    try:
        if to_group is not None:
            if end is not None:
                raise ValueError("--until cannot bound a re-delivery: the group reads on")
            bus.seek(model, to_group, start)
            err_console.print(f"group {to_group!r} moved to {since} on {bus.topic_of(model)}")
            return
        for event in bus.replay(model, since=start, until=end):
            sys.stdout.write(json.dumps(event.model_dump(mode="json")) + "\n")
        sys.stdout.flush()
    finally:
        bus.close()


def tail(
    contract: Annotated[str, typer.Argument(help="the contract's name")],
    config: ConfigOption = None,
    module: ModulesOption = None,
    dead_letters: Annotated[
        bool, typer.Option("--dead-letters", help="an event's dead letters, not its topic")
    ] = False,
    group: GroupOption = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="seconds between looks")] = 1.0,
    since: Annotated[
        str | None,
        typer.Option(help="earliest, or an ISO 8601 time (default: now, nothing before)"),
    ] = None,
) -> None:
    """Follow, one JSON object a line, what arrives from now on (or from --since): an event
    contract's topic (or with --dead-letters its dead letters), a command's dead letters (its
    queue's, or --group's). Joins no consumer group and moves nothing; Ctrl-C stops."""
    from interchange.contracts import Event

    start = when(since) or datetime.now(UTC)
    with _bus_for(contract, config, module) as (bus, model):
        if issubclass(model, Event) and not dead_letters:
            lines = _follow_log(bus, model, interval, start)
        else:
            after = None if start == "earliest" else start
            lines = _follow_dead_letters(bus, model, group, interval, after)
        try:
            for printed, line in enumerate(lines, start=1):
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
                if count is not None and printed >= count:
                    return
        except KeyboardInterrupt:
            return


def _follow_log(bus: Bus, model: Any, interval: float, start: Any) -> Iterator[dict[str, Any]]:
    """Records of the contract's topic from ``start`` on, read again from the last one's
    position every ``interval`` (a replay each time: no group, no offset). That position
    names every partition, so a partition that had nothing new is not read from its oldest
    record."""
    from interchange.contracts import Codec, DecodeError

    codec = Codec(bus.events.capabilities.header_prefix, contracts=bus.contracts)
    topic = bus.topic_of(model)
    since: Any = start
    last: str | None = None
    while True:
        again = last  # read again: a replay from a record's position includes that record
        for delivery in bus.events.replay(topic, since=since):
            message = delivery.message
            if message.id == again:
                # not always first: records a partition got after the last look was read
                # there can sort before it (Redis, a replay merges partitions by entry id)
                again = None
                continue
            line: dict[str, Any] = {"id": message.id, "key": message.key}
            try:
                envelope = codec.decode(message.headers, message.body)
                line.update(
                    time=envelope.time.isoformat(),
                    contract=f"{envelope.type} v{envelope.version}",
                    data=envelope.data.model_dump(mode="json"),
                )
            except DecodeError as error:
                line["undecodable"] = str(error)
            yield line
            since, last = delivery.position or since, message.id
        time.sleep(interval)


def _follow_dead_letters(
    bus: Bus, model: Any, group: str | None, interval: float, started: datetime | None
) -> Iterator[dict[str, Any]]:
    """Dead letters given up at or after ``started`` (None: all) not seen before, looked for
    every ``interval`` (on RabbitMQ each look takes them and returns them)."""
    from interchange.dlq import Selection, dead_letters

    seen: set[str] = set()
    while True:
        for record in dead_letters(bus, model, Selection(group=group, since=started)):
            if record.message.id not in seen:
                seen.add(record.message.id)
                yield _shown(record)
        time.sleep(interval)
