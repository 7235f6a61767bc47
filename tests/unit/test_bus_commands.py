"""Commands through the Bus: point-to-point, broadcast, request/response, retries, dead letters."""

import threading

import pytest

from interchange.adapters import DLQ_ATTEMPTS, DLQ_REASON, PublishRejected, RequestTimeout
from interchange.contracts import Command, Event
from interchange.testing import Recorder, wait_until


class Charge(Command, name="unit.bus.charge", version=1):
    account: str
    cents: int


class PriceChanged(Command, name="unit.bus.price_changed", version=1):
    sku: str
    cents: int


class GetQuote(Command, name="unit.bus.get_quote", version=1):
    sku: str


class Quote(Command, name="unit.bus.quote", version=1):
    sku: str
    cents: int


class Charged(Event, name="unit.bus.charged", version=1):
    account: str


class ChargeV2(Command, name="unit.bus.charge", version=2):
    account: str
    cents: int
    currency: str


def test_each_sent_command_is_handled_by_exactly_one_of_the_competing_workers(make_bus):
    bus = make_bus(concurrency=3)
    seen = Recorder()
    bus.handles(Charge)(seen)
    with bus:
        for i in range(60):
            bus.send(Charge(account=f"a{i}", cents=i))
        handled = seen.wait_for(60)
    assert sorted(c.cents for c in handled) == list(range(60))
    assert len(seen) == 60


def test_a_command_sent_before_any_worker_runs_is_kept_for_it(make_bus):
    producer, consumer = make_bus(), make_bus()
    producer.send(Charge(account="early", cents=1))
    seen = Recorder()
    consumer.handles(Charge)(seen)
    with consumer:
        assert seen.wait_for(1) == [Charge(account="early", cents=1)]


def test_every_broadcast_group_gets_its_own_copy_and_workers_in_a_group_compete(make_bus):
    bus = make_bus()
    cache, audit = Recorder(), Recorder()
    bus.handles(PriceChanged, group="cache", concurrency=2)(cache)
    bus.handles(PriceChanged, group="audit")(audit)
    with bus:
        for i in range(20):
            bus.broadcast(PriceChanged(sku="s", cents=i))
        assert sorted(c.cents for c in cache.wait_for(20)) == list(range(20))
        assert sorted(c.cents for c in audit.wait_for(20)) == list(range(20))
    assert len(cache) == 20
    assert len(audit) == 20


def test_a_broadcast_with_no_group_bound_raises_instead_of_vanishing(make_bus):
    with pytest.raises(PublishRejected, match=r"no queue is bound to exchange 'unit.bus.price"):
        make_bus().broadcast(PriceChanged(sku="s", cents=1))


def test_groups_named_in_routes_are_declared_at_start_so_early_broadcasts_are_kept(make_bus):
    sender = make_bus(routes={"unit.bus.price_changed": {"groups": ["cache"]}})
    sender.start()
    sender.broadcast(PriceChanged(sku="s", cents=7))
    receiver = make_bus()
    seen = Recorder()
    receiver.handles(PriceChanged, group="cache")(seen)
    with receiver:
        assert seen.wait_for(1) == [PriceChanged(sku="s", cents=7)]


def test_request_gets_the_handlers_reply(make_bus):
    bus = make_bus()

    @bus.handles(GetQuote)
    def quote(cmd, ctx):
        return Quote(sku=cmd.sku, cents=1299)

    with bus:
        assert bus.request(GetQuote(sku="kettle"), timeout=5) == Quote(sku="kettle", cents=1299)


def test_request_without_reply_times_out_and_a_late_reply_never_reaches_the_next_caller(
    make_bus,
):
    bus = make_bus()
    release_first = threading.Event()
    calls = []

    @bus.handles(GetQuote)
    def quote(cmd, ctx):
        calls.append(cmd.sku)
        if cmd.sku == "slow":
            release_first.wait(5)
        return Quote(sku=cmd.sku, cents=len(calls))

    with bus:
        with pytest.raises(RequestTimeout, match=r"no reply on 'unit.bus.get_quote' within 0.2s"):
            bus.request(GetQuote(sku="slow"), timeout=0.2)
        release_first.set()  # the slow handler now replies, too late
        assert bus.request(GetQuote(sku="fast"), timeout=5) == Quote(sku="fast", cents=2)


def test_a_handler_failing_twice_then_succeeding_is_handled_once_on_attempt_three(make_bus):
    bus = make_bus(retry={"max_attempts": 3, "initial_delay": 0.01})
    attempts = []

    @bus.handles(Charge)
    def flaky(cmd, ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("ledger busy")

    with bus:
        bus.send(Charge(account="x", cents=1))
        wait_until(lambda: attempts == [1, 2, 3])
    assert attempts == [1, 2, 3]


def test_a_handler_that_always_fails_is_dead_lettered_with_its_reason_after_max_attempts(
    make_bus,
):
    bus = make_bus(retry={"max_attempts": 4, "initial_delay": 0.001})
    attempts, dead = [], []

    @bus.handles(Charge)
    def broken(cmd, ctx):
        attempts.append(ctx.attempt)
        raise ValueError(f"account {cmd.account} is frozen")

    bus.handles_dead_letters(Charge)(dead.append)
    with bus:
        message_id = bus.send(Charge(account="acc-9", cents=5))
        wait_until(lambda: len(dead) == 1)
    assert attempts == [1, 2, 3, 4]
    record = dead[0]
    assert record.reason == "ValueError: account acc-9 is frozen"
    assert record.error == "ValueError"
    assert record.attempts == 4
    assert record.source == "unit.bus.charge"
    assert record.envelope is not None
    assert record.envelope.id == message_id
    assert record.message.headers[DLQ_REASON] == record.reason
    assert record.message.headers[DLQ_ATTEMPTS] == "4"


def test_bad_input_on_a_queue_is_dead_lettered_and_the_worker_keeps_going(make_bus):
    bus = make_bus()
    seen, dead = Recorder(), []
    bus.handles(Charge)(seen)
    bus.handles_dead_letters(Charge)(dead.append)
    queue = bus.queue_of(Charge)
    from interchange.adapters import TransportMessage

    good_headers = {
        "ce_id": "1",
        "ce_source": "t",
        "ce_specversion": "1.0",
        "ce_type": "unit.bus.charge",
        "ce_dataversion": "1",
    }
    with bus:
        bus.commands.send(queue, TransportMessage("m1", b'{"account": "x"', good_headers))
        bus.commands.send(queue, TransportMessage("m2", b'{"account": "x", "cents": 1}', {}))
        bus.commands.send(
            queue,
            TransportMessage(
                "m3",
                b"\x80\x04pickle",
                {**good_headers, "content-type": "application/x-python-pickle"},
            ),
        )
        bus.send(Charge(account="valid", cents=3))
        wait_until(lambda: len(dead) == 3 and len(seen) == 1)
    assert seen.contracts == [Charge(account="valid", cents=3)]
    reasons = sorted(r.reason for r in dead)
    assert reasons[0].startswith("body is not valid JSON")
    assert reasons[1].startswith("missing ce_type header: not a CloudEvent")
    assert reasons[2].startswith("unsupported content type 'application/x-python-pickle'")
    assert {r.attempts for r in dead} == {1}, "bad input is dead-lettered at once, not retried"


def test_a_route_that_names_bare_json_reads_legacy_messages_as_its_contract(make_bus):
    bus = make_bus(routes={"unit.bus.charge": {"bare_json": True}})
    seen = Recorder()
    bus.handles(Charge)(seen)
    from interchange.adapters import TransportMessage

    with bus:
        bus.commands.send(
            bus.queue_of(Charge), TransportMessage("legacy", b'{"account": "old", "cents": 9}')
        )
        assert seen.wait_for(1) == [Charge(account="old", cents=9)]
    assert seen.contexts[0].envelope.source == "legacy"


def test_a_version_the_consumer_did_not_declare_is_dead_lettered_not_handed_over(make_bus):
    bus = make_bus()
    seen, dead = Recorder(), []
    bus.handles(Charge)(seen)
    bus.handles_dead_letters(Charge)(dead.append)
    with bus:
        bus.send(ChargeV2(account="a", cents=1, currency="EUR"))
        wait_until(lambda: len(dead) == 1)
    assert len(seen) == 0
    assert dead[0].reason.startswith("no converter from v2 to v1 of unit.bus.charge")


def test_a_redelivered_duplicate_is_handled_once(make_bus):
    bus = make_bus()
    seen = Recorder()
    bus.handles(Charge)(seen)
    with bus:
        bus.send(Charge(account="a", cents=1), id="same-id")
        bus.send(Charge(account="a", cents=1), id="same-id")
        bus.send(Charge(account="b", cents=2))
        # one worker reads the queue in order, so once "b" is handled both copies were seen
        wait_until(lambda: any(c.account == "b" for c in seen.contracts))
    assert sorted(c.account for c in seen.contracts) == ["a", "b"]


def test_ctx_carries_correlation_and_names_the_cause(make_bus):
    bus = make_bus()
    published = Recorder()
    bus.subscribes(Charged, group="g")(published)

    @bus.handles(Charge)
    def charge(cmd, ctx):
        ctx.publish(Charged(account=cmd.account))

    with bus:
        command_id = bus.send(Charge(account="a", cents=1), correlation_id="order-77")
        published.wait_for(1)
    event = published.contexts[0].envelope
    assert event.correlation_id == "order-77"
    assert event.causation_id == command_id


def test_a_conversation_starts_with_the_first_message_id_as_correlation(make_bus):
    bus = make_bus()
    published = Recorder()
    bus.subscribes(Charged, group="g")(published)
    bus.handles(Charge)(lambda cmd, ctx: ctx.publish(Charged(account=cmd.account)))
    with bus:
        command_id = bus.send(Charge(account="a", cents=1))
        published.wait_for(1)
    assert published.contexts[0].envelope.correlation_id == command_id


def test_commands_and_events_are_different_verbs(make_bus):
    bus = make_bus()
    with pytest.raises(
        TypeError, match=r"Charged is an event: use bus.publish\(\), not bus.send\(\)"
    ):
        bus.send(Charged(account="a"))
    with pytest.raises(
        TypeError, match=r"Charge is a command: use bus.send\(\), not bus.publish\(\)"
    ):
        bus.publish(Charge(account="a", cents=1))
    with pytest.raises(TypeError, match="is a command: register it with handles"):
        bus.subscribes(Charge, group="g")
    with pytest.raises(TypeError, match="is an event: register it with subscribes"):
        bus.handles(Charged)


def test_stop_leaves_unhandled_commands_queued_for_the_next_worker(make_bus):
    bus = make_bus()
    first = Recorder()
    bus.handles(Charge)(first)
    with bus:
        bus.send(Charge(account="a", cents=1))
        first.wait_for(1)
    bus.send(Charge(account="b", cents=2))
    later = make_bus()
    second = Recorder()
    later.handles(Charge)(second)
    with later:
        assert second.wait_for(1) == [Charge(account="b", cents=2)]
    assert first.contracts == [Charge(account="a", cents=1)]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/octet-stream", "application/data", "text/plain; charset=utf-8"],
)
def test_a_bare_json_route_accepts_whatever_generic_content_type_a_legacy_client_set(
    make_bus, content_type
):
    from interchange.adapters import TransportMessage

    bus = make_bus(routes={"unit.bus.charge": {"bare_json": True}})
    seen = Recorder()
    bus.handles(Charge)(seen)
    headers = {} if content_type is None else {"content-type": content_type}
    with bus:
        body = b'{"account": "old", "cents": 9}'
        bus.commands.send(bus.queue_of(Charge), TransportMessage("legacy", body, headers))
        assert seen.wait_for(1) == [Charge(account="old", cents=9)]


@pytest.mark.parametrize(
    "content_type", ["application/x-python-serialize", "application/x-yaml", "text/yaml"]
)
def test_a_bare_json_route_still_refuses_pickle_and_yaml(make_bus, content_type):
    from interchange.adapters import TransportMessage

    bus = make_bus(routes={"unit.bus.charge": {"bare_json": True}})
    seen, dead = Recorder(), []
    bus.handles(Charge)(seen)
    bus.handles_dead_letters(Charge)(dead.append)
    with bus:
        body = b'{"account": "old", "cents": 9}'
        headers = {"content-type": content_type}
        bus.commands.send(bus.queue_of(Charge), TransportMessage("legacy", body, headers))
        wait_until(lambda: len(dead) == 1)
    assert len(seen) == 0
    assert dead[0].reason.startswith(f"unsupported content type {content_type!r}")
