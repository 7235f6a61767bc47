"""Dead letters an operator goes through (interchange.dlq) on the memory backend: listed with
reason, error, attempts, time and group, left in place; requeued onto their source with ids
kept and attempts reset, handled again; purged; a selection by group, time, ids and limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interchange.contracts import Command, Event
from interchange.dlq import Selection, dead_letters, purge, requeue
from interchange.testing import wait_until


class Invoice(Command, name="unit.dlq.invoice", version=1):
    n: int


class Booked(Event, name="unit.dlq.booked", version=1):
    n: int


def _dead_lettered_commands(bus, count, fixed):
    """Send ``count`` invoices to a handler that fails until ``fixed`` is set."""
    calls: list[tuple[int, int]] = []

    @bus.handles(Invoice)
    def invoice(cmd, ctx):
        calls.append((cmd.n, ctx.attempt))
        if not fixed:
            raise RuntimeError(f"ledger closed for {cmd.n}")

    bus.start()
    ids = [bus.send(Invoice(n=n)) for n in range(count)]
    wait_until(lambda: len(dead_letters(bus, Invoice)) == count, 10)
    return ids, calls


def test_dead_letters_are_listed_with_why_and_left_in_place(make_bus):
    bus = make_bus(retry={"max_attempts": 2, "initial_delay": 0.001})
    before = datetime.now(UTC)
    ids, _ = _dead_lettered_commands(bus, 3, fixed=[])
    listed = dead_letters(bus, Invoice)
    assert [r.message.id for r in listed] == ids
    first = listed[0]
    assert first.reason == "RuntimeError: ledger closed for 0"
    assert first.error == "RuntimeError"
    assert first.attempts == 2
    assert first.source == bus.queue_of(Invoice)
    assert first.time is not None
    assert first.time >= before
    assert first.envelope is not None
    assert first.envelope.data == Invoice(n=0)
    assert [r.message.id for r in dead_letters(bus, Invoice)] == ids  # still there


def test_requeue_puts_them_back_with_ids_kept_and_attempts_reset(make_bus):
    bus = make_bus(retry={"max_attempts": 2, "initial_delay": 0.001})
    fixed: list[bool] = []
    ids, calls = _dead_lettered_commands(bus, 3, fixed)
    fixed.append(True)
    calls.clear()
    seen: list[str] = []
    assert requeue(bus, Invoice, progress=lambda r: seen.append(r.message.id)) == 3
    assert seen == ids
    wait_until(lambda: len(calls) == 3, 10)
    assert sorted(calls) == [(0, 1), (1, 1), (2, 1)]  # handled again, as first attempts
    assert dead_letters(bus, Invoice) == []


def test_a_selection_by_ids_and_limit_takes_only_those(make_bus):
    bus = make_bus(retry={"max_attempts": 1, "initial_delay": 0.001})
    ids, _ = _dead_lettered_commands(bus, 5, fixed=[])
    assert purge(bus, Invoice, Selection(ids=frozenset(ids[1:3]))) == 2
    assert [r.message.id for r in dead_letters(bus, Invoice)] == [ids[0], *ids[3:]]
    assert purge(bus, Invoice, Selection(limit=2)) == 2
    assert [r.message.id for r in dead_letters(bus, Invoice)] == [ids[4]]
    later = datetime.now(UTC)
    assert dead_letters(bus, Invoice, Selection(since=later)) == []


def test_event_dead_letters_are_selected_by_group_and_requeued_to_the_topic(make_bus):
    bus = make_bus(retry={"max_attempts": 1, "initial_delay": 0.001})
    fixed: list[bool] = []
    billing: list[int] = []
    audit: list[int] = []

    @bus.subscribes(Booked, group="billing")
    def bill(evt):
        if not fixed:
            raise RuntimeError("billing down")
        billing.append(evt.n)

    @bus.subscribes(Booked, group="audit")
    def record(evt):
        audit.append(evt.n)

    bus.start()
    ids = [bus.publish(Booked(n=n)) for n in range(3)]
    wait_until(lambda: len(dead_letters(bus, Booked)) == 3 and len(audit) == 3, 10)
    assert {r.group for r in dead_letters(bus, Booked)} == {"billing"}
    assert dead_letters(bus, Booked, Selection(group="audit")) == []
    fixed.append(True)
    # the newest two first: the oldest is kept, and the two are not shown again after
    assert requeue(bus, Booked, Selection(group="billing", ids=frozenset(ids[1:]))) == 2
    wait_until(lambda: sorted(billing) == [1, 2], 10)
    assert [r.message.id for r in dead_letters(bus, Booked)] == [ids[0]]
    assert requeue(bus, Booked) == 1
    wait_until(lambda: sorted(billing) == [0, 1, 2], 10)
    assert dead_letters(bus, Booked) == []
    assert sorted(audit) == [0, 1, 2]  # the audit group had them: its dedupe drops the copies


def test_a_backend_that_cannot_sweep_says_so(make_bus):
    bus = make_bus()

    class Bare:
        capabilities = bus.commands.capabilities

    kept, bus.commands = bus.commands, Bare()
    try:
        with pytest.raises(TypeError, match="cannot go through dead letters"):
            dead_letters(bus, Invoice)
    finally:
        bus.commands = kept
