"""The dispatcher's decisions, on its own: no broker, no threads."""

from interchange import MemoryDedupeStore, RetryPolicy
from interchange.adapters import DeadLetter, Delivery, TransportMessage
from interchange.contracts import Codec, Command, Envelope
from interchange.dispatch import Dispatcher


class Refund(Command, name="unit.dispatch.refund", version=1):
    cents: int


def _delivery(attempt: int) -> Delivery:
    headers, body = Codec().encode(Envelope.wrap(Refund(cents=5), source="t"))
    return Delivery(TransportMessage("m-1", body, headers), "refunds", attempt=attempt)


def _dispatcher(calls: list) -> Dispatcher:
    return Dispatcher(
        sender=None,
        reply=None,
        contract=Refund,
        func=lambda cmd, ctx: calls.append(cmd),
        channel="refunds",
        group=None,
        codec=Codec(),
        retry=RetryPolicy(max_attempts=3, max_deliveries=3),
        dedupe=MemoryDedupeStore(),
    )


def test_a_delivery_past_max_deliveries_is_dead_lettered_without_calling_the_handler():
    calls: list = []
    outcome = _dispatcher(calls)(_delivery(attempt=4))
    assert calls == []
    assert isinstance(outcome, DeadLetter)
    assert outcome.error == "PoisonMessage"
    assert outcome.reason.startswith("delivered 4 times without an answer (max_deliveries 3)")


def test_the_last_allowed_attempt_still_reaches_the_handler():
    calls: list = []
    _dispatcher(calls)(_delivery(attempt=3))
    assert calls == [Refund(cents=5)]


def test_a_handler_of_msg_alone_is_called_without_a_context_and_still_deduplicated():
    from interchange.handlers import EventLoops, as_handler

    calls: list = []

    def refund(cmd: Refund) -> None:
        calls.append(cmd)

    dispatcher = Dispatcher(
        sender=None,
        reply=None,
        contract=Refund,
        func=as_handler(refund, EventLoops()),
        channel="refunds",
        group=None,
        codec=Codec(),
        retry=RetryPolicy(),
        dedupe=MemoryDedupeStore(),
    )
    delivery = _delivery(attempt=1)
    dispatcher(delivery)
    dispatcher(delivery)  # the same message again: a duplicate, not handled twice
    assert calls == [Refund(cents=5)]
    assert dispatcher.meter.counts["duplicates"] == 1
