"""send_many / publish_many store a large batch a chunk at a time: everything arrives in order
with the ids returned, no chunk is encoded before the one ahead of it was stored, and a chunk
that is not stored names its ids and every later one as failed."""

from __future__ import annotations

import pytest

from interchange.adapters import BackendUnavailable, PublishRejected
from interchange.chunks import CHUNK
from interchange.contracts import Command, Event
from interchange.testing import wait_until


class Load(Command, name="unit.chunks.load", version=1):
    n: int


class Loaded(Event, name="unit.chunks.loaded", version=1):
    n: int


class Counting:
    """A transport wrapper that records how many messages each store call got, and refuses
    the ``refuse``-th call (1-based) if asked."""

    def __init__(self, inner, refuse: int = 0, report_failed: bool = True):
        self.inner, self.refuse, self.report_failed = inner, refuse, report_failed
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _store(self, name, channel, messages):
        self.calls.append(len(messages))
        if len(self.calls) == self.refuse:
            failed = [m.id for m in messages[1:]] if self.report_failed else []
            raise PublishRejected("refused", failed=failed)
        getattr(self.inner, name)(channel, messages)

    def send_many(self, queue, messages):
        self._store("send_many", queue, messages)

    def publish_many(self, topic, messages):
        self._store("publish_many", topic, messages)


def test_a_large_batch_goes_in_chunks_in_order_with_its_ids(make_bus):
    bus = make_bus()
    bus.commands = counting = Counting(bus.commands)
    got: list[tuple[int, str]] = []
    bus.handles(Load)(lambda cmd, ctx: got.append((cmd.n, ctx.message_id)))
    count = 2 * CHUNK + 5
    with bus:
        ids = bus.send_many([Load(n=n) for n in range(count)])
        wait_until(lambda: len(got) == count, 30)
    assert counting.calls == [CHUNK, CHUNK, 5]
    assert got == [(n, ids[n]) for n in range(count)]


def test_events_in_chunks_keep_given_ids_and_keys(make_bus):
    bus = make_bus()
    bus.events = counting = Counting(bus.events)
    got: list[tuple[int, str, str | None]] = []
    bus.subscribes(Loaded, group="g")(
        lambda evt, ctx: got.append((evt.n, ctx.message_id, ctx.envelope.partition_key))
    )
    count = CHUNK + 3
    given = [f"id-{n}" for n in range(count)]
    keys = [f"k{n % 3}" for n in range(count)]
    with bus:
        assert bus.publish_many([Loaded(n=n) for n in range(count)], ids=given, keys=keys) == given
        wait_until(lambda: len(got) == count, 30)
    assert counting.calls == [CHUNK, 3]
    assert sorted(got) == [(n, given[n], keys[n]) for n in range(count)]


@pytest.mark.parametrize("report_failed", [True, False])
def test_a_chunk_not_stored_names_its_ids_and_every_later_one(make_bus, report_failed):
    bus = make_bus()
    bus.commands = counting = Counting(bus.commands, refuse=2, report_failed=report_failed)
    count = 3 * CHUNK
    ids = [f"c{n}" for n in range(count)]
    with pytest.raises(PublishRejected) as raised:
        bus.send_many([Load(n=n) for n in range(count)], ids=ids)
    assert counting.calls == [CHUNK, CHUNK], "nothing after the refused chunk was tried"
    first = CHUNK + 1 if report_failed else CHUNK  # the transport reported all but one
    assert raised.value.failed == ids[first:]
    assert bus.metrics()[f"{bus.queue_of(Load)}|"]["sent"] == CHUNK  # the first chunk


def test_the_whole_batch_is_checked_before_anything_is_stored(make_bus):
    bus = make_bus()
    bus.commands = counting = Counting(bus.commands)
    mixed = [Load(n=n) for n in range(CHUNK)] + [Loaded(n=1)]
    with pytest.raises(TypeError, match="one contract"):
        bus.send_many(mixed)
    with pytest.raises(ValueError, match="ids"):
        bus.send_many([Load(n=1), Load(n=2)], ids=["only-one"])
    assert counting.calls == []


def test_a_backend_down_mid_batch_is_a_failure_of_the_rest(make_bus):
    bus = make_bus()

    class Down(Counting):
        def _store(self, name, channel, messages):
            self.calls.append(len(messages))
            if len(self.calls) > 1:
                raise BackendUnavailable("gone")
            getattr(self.inner, name)(channel, messages)

    bus.events = Down(bus.events)
    with pytest.raises(BackendUnavailable) as raised:
        bus.publish_many([Loaded(n=n) for n in range(CHUNK + 7)])
    assert len(raised.value.failed) == 7  # the second chunk, all of it: none reported
