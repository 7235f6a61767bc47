"""Handlers any way Python allows: checked when registered, async awaited, failures bounded."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from pydantic import BaseModel

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable
from interchange.adapters.memory import MemoryBroker
from interchange.contracts import Command, Event
from interchange.testing import Recorder, wait_until
from tests.net import closed_port


class Ship(Command, name="unit.handlers.ship", version=1):
    parcel: str


class Shipped(Event, name="unit.handlers.shipped", version=1):
    parcel: str


def test_an_async_handler_is_awaited_on_a_loop_the_consumer_keeps(make_bus):
    bus = make_bus()
    seen: list[tuple[str, int]] = []
    loops: set[int] = set()

    @bus.handles(Ship)
    async def ship(cmd, ctx):
        await asyncio.sleep(0.001)
        loops.add(id(asyncio.get_running_loop()))
        seen.append((cmd.parcel, ctx.attempt))

    with bus:
        for n in range(3):
            bus.send(Ship(parcel=f"p-{n}"))
        wait_until(lambda: len(seen) == 3)
    assert sorted(seen) == [("p-0", 1), ("p-1", 1), ("p-2", 1)]
    assert len(loops) == 1, "one consumer thread keeps one event loop between messages"


def test_an_async_handler_that_raises_is_retried_then_dead_lettered(make_bus):
    bus = make_bus()
    attempts: list[int] = []
    dead = []

    @bus.handles(Ship)
    async def ship(cmd, ctx):
        attempts.append(ctx.attempt)
        raise RuntimeError("carrier down")

    bus.handles_dead_letters(Ship)(dead.append)
    with bus:
        bus.send(Ship(parcel="p-1"))
        wait_until(lambda: len(dead) == 1)
    assert attempts == [1, 2, 3]
    assert dead[0].reason == "RuntimeError: carrier down"


def test_an_async_event_handler_sees_a_duplicate_once(make_bus):
    bus = make_bus()
    seen = []

    @bus.subscribes(Shipped, group="audit")
    async def audit(evt):  # the (msg) form, async
        seen.append(evt.parcel)

    with bus:
        bus.publish(Shipped(parcel="p-1"), id="same")
        bus.publish(Shipped(parcel="p-1"), id="same")
        bus.publish(Shipped(parcel="p-2"))
        wait_until(lambda: len(seen) == 2)
        time.sleep(0.05)  # let a wrongly delivered duplicate show up; not a wait for a result
    assert seen == ["p-1", "p-2"]


def test_a_handler_may_take_only_the_message(make_bus):
    bus = make_bus()
    seen = []
    bus.handles(Ship)(lambda cmd: seen.append(cmd.parcel))
    with bus:
        bus.send(Ship(parcel="p-1"))
        wait_until(lambda: seen == ["p-1"])


@pytest.mark.parametrize(
    "handler",
    [lambda: None, lambda cmd, ctx, extra: None, lambda *, cmd: None],
    ids=["no arguments", "three arguments", "keyword only"],
)
def test_a_handler_with_the_wrong_signature_is_refused_when_registered(make_bus, handler):
    bus = make_bus()
    with pytest.raises(TypeError, match=r"a handler takes \(msg\) or \(msg, ctx\)"):
        bus.handles(Ship)(handler)
    assert bus.handlers == []


async def _async_generator(cmd):
    yield cmd


def _generator(cmd, ctx):
    yield cmd


class _GeneratorCall:
    def __call__(self, cmd):
        yield cmd


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (_async_generator, "an async generator"),
        (_generator, "a generator"),
        (_GeneratorCall(), "a generator"),
    ],
    ids=["async def with yield", "def with yield", "__call__ with yield"],
)
def test_a_generator_handler_is_refused_when_registered_not_counted_as_handled(
    make_bus, handler, kind
):
    """Calling a generator function only creates a generator: the body never ran, yet the
    message was acknowledged as handled. Refused at registration, on every verb."""
    bus = make_bus()
    with pytest.raises(TypeError, match=f"is {kind} function .*its body would never run"):
        bus.handles(Ship)(handler)
    with pytest.raises(TypeError, match=f"is {kind} function"):
        bus.subscribes(Shipped, group="g")(handler)
    with pytest.raises(TypeError, match=f"is {kind} function"):
        bus.handles_dead_letters(Ship)(handler)
    assert bus.handlers == []


def test_registering_handlers_never_contacts_the_broker():
    port = closed_port()
    settings = Settings(
        backends={
            "commands": f"amqp://127.0.0.1:{port}//?connect_timeout=1",
            "events": "memory://pure",
        }
    )
    started = time.monotonic()
    bus = Bus(settings)
    bus.handles(Ship)(Recorder())
    bus.handles(Ship, group="audit")(Recorder())
    bus.handles_dead_letters(Ship)(print)
    assert time.monotonic() - started < 1.0
    with pytest.raises(BackendUnavailable):
        bus.start()  # topology is declared here, when consumers start
    bus.close()


def test_a_dead_letter_reader_that_raises_is_bounded_like_any_handler(make_bus, memory_url):
    bus = make_bus()
    calls = []

    def broken_reader(record):
        calls.append(record.reason)
        raise ValueError("reader bug")

    bus.handles(Ship)(lambda cmd: (_ for _ in ()).throw(RuntimeError("always")))
    bus.handles_dead_letters(Ship)(broken_reader)
    parked = MemoryBroker.for_url(memory_url).queue(f"{bus.queue_of(Ship)}.dlq.dlq")
    with bus:
        bus.send(Ship(parcel="p-1"))
        wait_until(lambda: len(parked.ready) == 1)
        time.sleep(0.05)  # a reader looping forever would be called again; not a wait
    assert calls == ["RuntimeError: always"] * 3
    assert parked.ready[0].message.headers["x-interchange-dead-letter-reason"] == (
        "ValueError: reader bug"
    )


def test_the_last_attempt_before_dead_lettering_logs_the_traceback(make_bus, caplog):
    bus = make_bus()

    @bus.handles(Ship)
    def ship(cmd):
        raise KeyError("parcel")

    done = threading.Event()
    bus.handles_dead_letters(Ship)(lambda record: done.set())
    with caplog.at_level(logging.WARNING, logger="interchange"), bus:
        bus.send(Ship(parcel="p-1"))
        assert done.wait(10)
    final = [r for r in caplog.records if "dead-lettering" in r.getMessage()]
    assert len(final) == 1
    assert final[0].exc_info is not None
    assert "KeyError" in caplog.text.split("dead-lettering")[-1]
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all(r.exc_info is None for r in retries)


class NotAContract(BaseModel):
    parcel: str


def test_sending_a_dict_or_registering_a_plain_model_says_what_was_expected(make_bus):
    bus = make_bus()
    with pytest.raises(TypeError, match=r"bus.send\(\) takes a command, not dict"):
        bus.send({"parcel": "p-1"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"bus.publish\(\) takes an event, not NotAContract"):
        bus.publish(NotAContract(parcel="p-1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"bus.handles\(\) takes a command class"):
        bus.handles(NotAContract)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"bus.subscribes\(\) takes an event class"):
        bus.subscribes(dict, group="g")  # type: ignore[arg-type]
