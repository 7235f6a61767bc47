"""Starting a Bus's consumers when a broker does not answer: a stop from another thread is
obeyed at once, and a start that failed midway leaves nothing running, so it can be retried
without starting any consumer twice."""

from __future__ import annotations

import threading
import time

import pytest

from interchange.adapters import BackendUnavailable
from interchange.testing import wait_until
from interchange.workers import Registration, Workers


class Fake:
    """A subscription that records what was asked of it."""

    def __init__(self, name: str) -> None:
        self.name, self.stopped, self.closed = name, False, False

    @property
    def alive(self) -> bool:
        return not self.closed

    def stop(self) -> None:
        self.stopped = True

    def close(self, timeout: float = 10.0) -> None:
        self.closed = True


def test_a_start_that_fails_midway_stops_what_it_started_and_can_be_retried():
    made: list[Fake] = []
    failures = [BackendUnavailable("broker down")]

    def first() -> Fake:
        made.append(Fake("first"))
        return made[-1]

    def second() -> Fake:
        if failures:
            raise failures.pop()
        made.append(Fake("second"))
        return made[-1]

    workers = Workers()
    workers.register(Registration("a", first, 1))
    workers.register(Registration("b", second, 1))
    with pytest.raises(BackendUnavailable):
        workers.start(lambda: None)
    assert [(f.name, f.stopped, f.closed) for f in made] == [("first", True, True)]
    assert workers.consumers() == []
    assert not workers.started

    workers.start(lambda: None)
    assert workers.consumers() == [("first", True), ("second", True)]
    assert sum(f.alive for f in made) == 2  # none started twice


def test_stop_during_a_start_waiting_for_a_broker_returns_at_once():
    answering = threading.Event()
    made: list[Fake] = []

    def waits_for_its_broker() -> Fake:
        answering.wait(30)
        made.append(Fake("late"))
        return made[-1]

    workers = Workers()
    workers.register(Registration("a", lambda: made.append(Fake("early")) or made[-1], 1))
    workers.register(Registration("b", waits_for_its_broker, 1))
    starting = threading.Thread(target=workers.start, args=(lambda: None,), daemon=True)
    starting.start()
    wait_until(lambda: len(made) == 1, 10)  # the first consumer runs; the second waits

    stopped_at = time.monotonic()
    assert workers.stop(5)
    assert time.monotonic() - stopped_at < 1
    assert [(f.name, f.closed) for f in made] == [("early", True)]

    answering.set()  # the broker answers after all: what that start made is stopped at once
    starting.join(10)
    assert [(f.name, f.stopped, f.closed) for f in made] == [
        ("early", True, True),
        ("late", True, True),
    ]
    assert workers.consumers() == []
    assert not workers.started


def test_a_bus_stopped_while_its_start_waited_starts_no_drainer_when_that_start_ends():
    import uuid

    from interchange import Bus, Command, Settings

    class Order(Command, name=f"workers.start.order.{uuid.uuid4().hex[:6]}", version=1):
        n: int

    name = uuid.uuid4().hex
    bus = Bus(
        Settings.without_environment(
            backends={
                "commands": f"memory://{name}",
                "events": f"memory://{name}",
                "fallback": f"memory://{name}-spool",
            }
        )
    )
    declaring, answering = threading.Event(), threading.Event()
    declare = bus._declare_broadcast_groups

    def slow_declare() -> None:  # a broker that answers late
        declaring.set()
        answering.wait(30)
        declare()

    bus._declare_broadcast_groups = slow_declare  # type: ignore[method-assign]
    bus.handles(Order)(lambda order: None)
    starting = threading.Thread(target=bus.start, daemon=True)
    starting.start()
    assert declaring.wait(10)
    assert bus.stop(5)  # SIGTERM while the start waits
    answering.set()
    starting.join(10)
    assert bus.drainer is not None
    assert bus.drainer._thread is None, "a drainer started after the bus was stopped"
    assert bus.workers.consumers() == []
    bus.close()
