"""Conformance: what every command transport promises (ported from the intent of Watermill's
universal Pub/Sub tests, plus request/response and dead letters)."""

from __future__ import annotations

import threading
import uuid

import pytest

from interchange.adapters import (
    ACK,
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_REASON,
    DLQ_SOURCE,
    DeadLetter,
    PublishRejected,
    RequestTimeout,
    Retry,
    TransportMessage,
)
from interchange.testing import wait_until
from tests.conformance.inbox import Inbox, accepted


def _messages(n: int, tag: str = "m") -> list[TransportMessage]:
    return [
        TransportMessage(f"{tag}-{i}-{uuid.uuid4().hex[:6]}", f"body {i}".encode(), {"n": str(i)})
        for i in range(n)
    ]


def test_commands_sent_before_any_consumer_are_delivered_once_it_starts(commands, names):
    queue = next(names)
    sent = _messages(20)
    commands.declare(queue)
    for message in sent:
        commands.send(queue, message)
    inbox = Inbox()
    commands.consume(queue, inbox)
    assert sorted(inbox.wait_for(20)) == sorted(m.id for m in sent)


def test_body_headers_and_key_arrive_unchanged(commands, names):
    queue = next(names)
    inbox = Inbox()
    commands.consume(queue, inbox)
    original = TransportMessage(
        "id-1", b'{"k": "\xc3\xa9"}', {"ce_type": "x", "tenant": "acme"}, key="k-1"
    )
    commands.send(queue, original)
    inbox.wait_for(1)
    got = inbox.deliveries[0].message
    assert got.id == original.id
    assert got.body == original.body
    assert {k: got.headers[k] for k in original.headers} == dict(original.headers)
    assert inbox.deliveries[0].attempt == 1
    assert inbox.deliveries[0].redelivered is False


def test_competing_consumers_share_the_work_and_each_command_is_handled_once(commands, names):
    queue = next(names)
    both_busy = threading.Barrier(2, timeout=10)
    first_seen: dict[str, bool] = {}
    lock = threading.Lock()

    def worker(name: str) -> Inbox:
        def answer(delivery):
            with lock:
                first = name not in first_seen
                first_seen[name] = True
            if first:
                both_busy.wait()  # holds its first message until the other worker has one too
            return ACK

        return Inbox(answer)

    a, b = worker("a"), worker("b")
    commands.consume(queue, a)
    commands.consume(queue, b)
    sent = _messages(100)
    for message in sent:
        commands.send(queue, message)
    wait_until(lambda: len(a.ids()) + len(b.ids()) >= 100, 20)
    handled = a.ids() + b.ids()
    assert sorted(handled) == sorted(m.id for m in sent), "each command exactly once"
    assert a.ids(), "worker a did no work"
    assert b.ids(), "worker b did no work"


def test_a_retried_command_is_redelivered_with_its_attempt_counted(commands, names):
    queue = next(names)
    inbox = Inbox(lambda d: Retry(delay=0.01) if d.attempt < 3 else ACK)
    commands.consume(queue, inbox)
    commands.send(queue, TransportMessage("again", b"x"))
    inbox.wait_for(3)
    assert [d.attempt for d in inbox.deliveries] == [1, 2, 3]
    assert [d.redelivered for d in inbox.deliveries] == [False, True, True]


def test_a_handler_that_raises_does_not_kill_its_consumer(commands, names):
    queue = next(names)

    def answer(delivery):
        if delivery.message.id == "boom" and delivery.attempt == 1:
            raise RuntimeError("handler bug")
        return ACK

    inbox = Inbox(answer)
    commands.consume(queue, inbox)
    commands.send(queue, TransportMessage("boom", b"x"))
    commands.send(queue, TransportMessage("next", b"y"))
    inbox.wait_for(3)
    assert sorted(inbox.ids()) == ["boom", "boom", "next"]


def test_a_dead_lettered_command_lands_in_the_dlq_with_its_reason(commands, names):
    queue = next(names)
    commands.consume(queue, Inbox(lambda d: DeadLetter("ValueError: bad sku", "ValueError")))
    dlq = Inbox()
    commands.consume(f"{queue}.dlq", dlq)
    commands.send(queue, TransportMessage("poison", b"x", {"tenant": "acme"}))
    commands.send(queue, TransportMessage("poison-2", b"y"))
    assert sorted(dlq.wait_for(2)) == ["poison", "poison-2"]
    headers = next(d for d in dlq.deliveries if d.message.id == "poison").message.headers
    assert headers[DLQ_REASON] == "ValueError: bad sku"
    assert headers[DLQ_ERROR] == "ValueError"
    assert headers[DLQ_ATTEMPTS] == "1"
    assert headers[DLQ_SOURCE] == queue
    assert headers["tenant"] == "acme"


def test_consumption_continues_after_a_consumer_closes(commands, another_commands, names):
    queue = next(names)
    first = Inbox()
    subscription = commands.consume(queue, first)
    sent = _messages(10)
    for message in sent[:5]:
        commands.send(queue, message)
    first.wait_for(5)
    subscription.close()
    for message in sent[5:]:
        commands.send(queue, message)
    second = Inbox()
    another_commands().consume(queue, second)
    second.wait_for(5)
    assert sorted(first.ids() + second.ids()) == sorted(m.id for m in sent)


def test_queues_are_isolated(commands, names):
    left, right = next(names), next(names)
    left_inbox, right_inbox = Inbox(), Inbox()
    commands.consume(left, left_inbox)
    commands.consume(right, right_inbox)
    commands.send(left, TransportMessage("to-left", b"l"))
    commands.send(right, TransportMessage("to-right", b"r"))
    assert left_inbox.wait_for(1) == ["to-left"]
    assert right_inbox.wait_for(1) == ["to-right"]


def test_a_broadcast_reaches_every_bound_queue_once(commands, names):
    exchange, cache, audit = next(names), next(names), next(names)
    cache_inbox, audit_inbox = Inbox(), Inbox()
    commands.consume(cache, cache_inbox, exchange=exchange)
    commands.consume(cache, cache_inbox, exchange=exchange)  # a second worker in one group
    commands.consume(audit, audit_inbox, exchange=exchange)
    sent = _messages(10)
    for message in sent:
        commands.broadcast(exchange, message)
    expected = sorted(m.id for m in sent)
    assert sorted(cache_inbox.wait_for(10)) == expected
    assert sorted(audit_inbox.wait_for(10)) == expected


def test_a_broadcast_nobody_is_bound_to_is_rejected(commands, names):
    with pytest.raises(PublishRejected):
        commands.broadcast(next(names), TransportMessage("lost?", b"x"))


@pytest.mark.requires("request_reply")
def test_a_request_gets_its_reply(commands, names):
    queue = next(names)

    def answer(delivery):
        reply = TransportMessage("r-" + delivery.message.id, delivery.message.body.upper())
        commands.reply(delivery.message.reply_to, reply)
        return ACK

    commands.consume(queue, Inbox(answer))
    reply = commands.request(queue, TransportMessage("q-1", b"ping"), timeout=10)
    assert (reply.id, reply.body) == ("r-q-1", b"PING")


@pytest.mark.requires("request_reply")
def test_a_late_reply_is_discarded_not_given_to_the_next_request(commands, names, backend):
    queue = next(names)
    release = threading.Event()
    late_reply_answered = threading.Event()
    late_reply_rejected = threading.Event()

    def answer(delivery):
        if delivery.message.id == "slow":
            release.wait(10)
            try:
                commands.reply(delivery.message.reply_to, TransportMessage("late", b"late"))
            except PublishRejected:
                late_reply_rejected.set()  # the backend knew the requester was gone
            late_reply_answered.set()
            return ACK
        commands.reply(delivery.message.reply_to, TransportMessage("r-fast", b"fast"))
        return ACK

    commands.consume(queue, Inbox(answer))
    with pytest.raises(RequestTimeout):
        commands.request(queue, TransportMessage("slow", b"x"), timeout=0.3)
    release.set()
    assert late_reply_answered.wait(10), "the late reply was never attempted"
    # A backend refuses the late reply (memory, Redis: the requester is gone) or takes it and
    # its requester drops it (RabbitMQ: the reply queue lives on); either way, never handed on.
    assert late_reply_rejected.is_set() == backend.refuses_late_replies
    reply = commands.request(queue, TransportMessage("fast", b"x"), timeout=10)
    assert reply.body == b"fast"


def test_closing_a_sender_loses_nothing_it_accepted(commands, another_commands, names):
    queue = next(names)
    sender = another_commands()
    sender.declare(queue)
    sent = _messages(50)
    for message in sent:
        sender.send(queue, message)
    sender.close()
    inbox = Inbox()
    commands.consume(queue, inbox)
    assert sorted(inbox.wait_for(50)) == sorted(m.id for m in sent)


@pytest.mark.requires("survives_restart", "restart")
def test_consumers_carry_on_after_a_broker_restart_and_lose_nothing_in_flight(
    commands, backend, url, names
):
    queue = next(names)
    in_handler = threading.Event()
    restarted = threading.Event()

    def answer(delivery):
        if delivery.message.id == "in-flight" and delivery.attempt == 1:
            in_handler.set()
            restarted.wait(30)
        return ACK

    inbox = Inbox(answer)
    commands.consume(queue, inbox)
    commands.send(queue, TransportMessage("in-flight", b"x"))
    assert in_handler.wait(10)
    backend.restart(url)
    restarted.set()
    wait_until(
        lambda: (
            "after" in inbox.ids()
            or accepted(lambda: commands.send(queue, TransportMessage("after", b"y")))
        ),
        60,
    )
    wait_until(lambda: "after" in inbox.ids(), 60)
    assert set(inbox.ids()) == {"in-flight", "after"}
    # Whether the command in flight comes again depends on the broker (RabbitMQ requeues what
    # a dropped channel held; a Redis pending entry survives and is acknowledged late); when
    # it does, it says so.
    again = [d for d in inbox.deliveries if d.message.id == "in-flight"][1:]
    assert len(again) <= 1
    assert all(d.redelivered for d in again)
