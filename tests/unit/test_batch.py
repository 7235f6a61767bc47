"""bus.batch(): calls return ids at once, nothing is stored before the block ends, then every
message is stored in call order per contract; a failure names every id not stored; a block
that raises stores nothing."""

from __future__ import annotations

import pytest

from interchange.adapters import BackendUnavailable
from interchange.contracts import Command, Event
from interchange.testing import wait_until


class Pick(Command, name="unit.batch.pick", version=1):
    n: int


class Picked(Event, name="unit.batch.picked", version=1):
    n: int


def test_nothing_is_stored_before_the_block_ends_then_all_in_order(make_bus):
    bus = make_bus()
    picks: list[tuple[int, str]] = []
    picked: list[tuple[int, str | None]] = []
    bus.handles(Pick)(lambda cmd, ctx: picks.append((cmd.n, ctx.message_id)))
    bus.subscribes(Picked, group="g")(
        lambda evt, ctx: picked.append((evt.n, ctx.envelope.partition_key))
    )
    with bus:
        with bus.batch() as batch:
            ids = [batch.send(Pick(n=n)) for n in range(5)]
            event_ids = [batch.publish(Picked(n=n), key=f"k{n % 2}") for n in range(3)]
            assert len(batch) == 8
            assert bus.metrics() == {}, "nothing stored yet"
        wait_until(lambda: len(picks) == 5 and len(picked) == 3, 10)
    assert picks == [(n, ids[n]) for n in range(5)]
    assert picked == [(0, "k0"), (1, "k1"), (2, "k0")]
    assert len(set(event_ids)) == 3


def test_max_pending_flushes_along_the_way(make_bus):
    bus = make_bus()
    with bus.batch(max_pending=3) as batch:
        for n in range(7):
            batch.send(Pick(n=n))
            assert len(batch) == (n + 1) % 3
    assert bus.metrics()[f"{bus.queue_of(Pick)}|"]["sent"] == 7


def test_a_block_that_raises_stores_nothing(make_bus):
    bus = make_bus()

    def loop() -> None:
        with bus.batch() as batch:
            batch.send(Pick(n=1))
            raise RuntimeError("the loop broke")

    with pytest.raises(RuntimeError, match="the loop broke"):
        loop()
    assert bus.metrics() == {}


def test_a_failure_names_every_id_not_stored(make_bus):
    bus = make_bus()

    class Refusing:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def publish_many(self, topic, messages):
            raise BackendUnavailable("broker gone", failed=[m.id for m in messages])

    bus.events = Refusing(bus.events)
    batch = bus.batch()
    for n in range(2):
        batch.send(Pick(n=n))
    published = [batch.publish(Picked(n=n)) for n in range(2)]
    batch.send(Pick(n=9))  # the same contract as the first two: stored with them
    with pytest.raises(BackendUnavailable) as raised:
        batch.flush()
    assert raised.value.failed == published
    assert bus.metrics()[f"{bus.queue_of(Pick)}|"]["sent"] == 3


def test_only_contracts_of_the_right_kind():
    from interchange.batch import Batch

    batch = Batch(bus=None)
    with pytest.raises(TypeError, match="takes a Command"):
        batch.send(Picked(n=1))
    with pytest.raises(TypeError, match="takes an Event"):
        batch.publish(Pick(n=1))


def test_ids_made_in_bulk_are_version_4_uuids_and_all_different():
    import uuid

    from interchange.encoding import new_ids

    ids = new_ids(2_000)
    assert len(set(ids)) == 2_000
    for made in ids:
        parsed = uuid.UUID(made)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, made)


def test_pooled_ids_are_all_different_and_a_forked_child_never_repeats_its_parents():
    import os
    import uuid

    from interchange.encoding import next_id

    taken = [next_id() for _ in range(1_000)]  # the pool keeps the rest of its last refill
    assert len(set(taken)) == 1_000
    assert all(uuid.UUID(i).version == 4 for i in taken)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports its next id
        os.write(write, next_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    os.close(write)
    in_child = os.read(read, 100).decode()
    os.close(read)
    assert in_child != next_id()
