"""Commands over the real RabbitMQ: what the issue's "done when" asks, outcome by outcome."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import amqp
import pytest

from interchange.adapters import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_REASON,
    PublishRejected,
    RequestTimeout,
)
from interchange.adapters.rabbitmq.topology import queue_arguments
from interchange.contracts import Command
from interchange.testing import Recorder, wait_until

pytestmark = pytest.mark.amqp


class ReserveSeat(Command, name="it.rabbit.reserve_seat", version=1):
    seat: int


class FareChanged(Command, name="it.rabbit.fare_changed", version=1):
    route: str
    cents: int


class QuoteFare(Command, name="it.rabbit.quote_fare", version=1):
    route: str


class Fare(Command, name="it.rabbit.fare", version=1):
    route: str
    cents: int


def _raw_channel(amqp_url: str) -> tuple[amqp.Connection, amqp.Channel]:
    from kombu import Connection

    connection = Connection(amqp_url).connection  # a py-amqp connection, as any program has
    return connection, connection.channel()


def test_two_competing_workers_handle_each_of_1000_commands_exactly_once(amqp_bus):
    bus = amqp_bus()
    per_worker: Counter[str] = Counter()
    seats: Counter[int] = Counter()
    lock = threading.Lock()

    @bus.handles(ReserveSeat, concurrency=2)
    def reserve(cmd, ctx):
        with lock:
            seats[cmd.seat] += 1
            per_worker[threading.current_thread().name + str(id(threading.current_thread()))] += 1

    with bus:
        bus.send_many([ReserveSeat(seat=i) for i in range(1000)])
        wait_until(lambda: sum(seats.values()) >= 1000, 60)
    assert sorted(seats) == list(range(1000))
    assert set(seats.values()) == {1}, "a seat was reserved twice"
    assert len(per_worker) == 2, f"both workers must work: {per_worker}"
    assert min(per_worker.values()) > 0


def test_two_subscriber_services_each_receive_all_1000_broadcasts(amqp_bus):
    pricing, audit = amqp_bus(), amqp_bus()
    cache, log = Recorder(), Recorder()
    pricing.handles(FareChanged, group="pricing-cache", concurrency=2)(cache)
    audit.handles(FareChanged, group="audit")(log)
    with pricing, audit:
        sender = amqp_bus()
        for i in range(1000):
            sender.broadcast(FareChanged(route="LIS-OPO", cents=i))
        cache.wait_for(1000, timeout=60)
        log.wait_for(1000, timeout=60)
    assert sorted(c.cents for c in cache.contracts) == list(range(1000))
    assert sorted(c.cents for c in log.contracts) == list(range(1000))


def test_request_gets_its_reply_and_times_out_when_nobody_answers(amqp_bus):
    server, client = amqp_bus(), amqp_bus()
    slow = threading.Event()

    @server.handles(QuoteFare)
    def quote(cmd, ctx):
        if cmd.route == "slow":
            slow.wait(10)
        return Fare(route=cmd.route, cents=4200)

    with server:
        assert client.request(QuoteFare(route="LIS-OPO"), timeout=10) == Fare(
            route="LIS-OPO", cents=4200
        )
        with pytest.raises(RequestTimeout, match=r"no reply on .*quote_fare.* within 0.5s"):
            client.request(QuoteFare(route="slow"), timeout=0.5)
        slow.set()  # its late reply must not reach the next request
        assert client.request(QuoteFare(route="FAO-LIS"), timeout=10).route == "FAO-LIS"


def test_a_request_whose_queue_is_gone_fails_at_once_instead_of_at_its_timeout(amqp_bus, amqp_url):
    client = amqp_bus()
    with pytest.raises(RequestTimeout):  # declares the queue; nobody answers
        client.request(QuoteFare(route="first"), timeout=0.2)
    connection, channel = _raw_channel(amqp_url)
    try:
        channel.queue_delete(client.queue_of(QuoteFare))
    finally:
        connection.close()
    started = time.monotonic()
    with pytest.raises(PublishRejected, match="unroutable"):
        client.request(QuoteFare(route="second"), timeout=30)
    assert time.monotonic() - started < 5


def test_requests_from_eight_threads_at_once_each_get_their_own_reply(amqp_bus):
    server, client = amqp_bus(), amqp_bus()

    @server.handles(QuoteFare)
    def quote(cmd: QuoteFare) -> Fare:
        return Fare(route=cmd.route, cents=len(cmd.route))

    answers: dict[str, Fare] = {}
    failures: list[BaseException] = []

    def ask(thread: int) -> None:
        try:
            for i in range(25):
                route = f"{thread}-{i}-" + "x" * i
                answers[route] = client.request(QuoteFare(route=route), timeout=10)
        except BaseException as error:  # reported below
            failures.append(error)

    with server:
        threads = [threading.Thread(target=ask, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not failures
    assert len(answers) == 200
    assert all(fare == Fare(route=r, cents=len(r)) for r, fare in answers.items())


def test_an_unroutable_command_raises_instead_of_vanishing(amqp_bus, amqp_url):
    bus = amqp_bus()
    with pytest.raises(PublishRejected, match="unroutable"):
        bus.broadcast(FareChanged(route="nowhere", cents=1))  # no group bound
    bus.send(ReserveSeat(seat=1))  # declares the queue ...
    connection, channel = _raw_channel(amqp_url)
    channel.queue_delete(bus.queue_of(ReserveSeat))  # ... which an operator then deletes
    connection.close()
    with pytest.raises(PublishRejected, match="unroutable: no queue for queue"):
        bus.send(ReserveSeat(seat=2))


def test_a_handler_failing_twice_then_succeeding_is_handled_once_on_attempt_3(amqp_bus):
    bus = amqp_bus(retry={"max_attempts": 3, "initial_delay": 0.05})
    attempts, done = [], []

    @bus.handles(ReserveSeat)
    def flaky(cmd, ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise TimeoutError("seat map locked")
        done.append(cmd.seat)

    with bus:
        bus.send(ReserveSeat(seat=7))
        wait_until(lambda: done == [7], 30)
    assert attempts == [1, 2, 3]
    assert done == [7]


def test_an_always_failing_command_lands_in_the_dead_letter_queue_with_its_reason(
    amqp_bus, amqp_url
):
    bus = amqp_bus(retry={"max_attempts": 2, "initial_delay": 0.05})
    dead = []

    @bus.handles(ReserveSeat)
    def broken(cmd, ctx):
        raise ValueError(f"seat {cmd.seat} does not exist")

    bus.handles_dead_letters(ReserveSeat)(dead.append)
    with bus:
        sent = bus.send(ReserveSeat(seat=99))
        wait_until(lambda: len(dead) == 1, 30)
    record = dead[0]
    assert record.reason == "ValueError: seat 99 does not exist"
    assert record.error == "ValueError"
    assert record.attempts == 2
    assert record.envelope.id == sent
    assert record.message.headers[DLQ_REASON] == record.reason
    assert record.message.headers[DLQ_ERROR] == "ValueError"
    assert record.message.headers[DLQ_ATTEMPTS] == "2"


def test_a_malformed_body_from_a_raw_client_is_dead_lettered_and_the_worker_goes_on(
    amqp_bus, amqp_url
):
    bus = amqp_bus()
    seen, dead = Recorder(), []
    bus.handles(ReserveSeat)(seen)
    bus.handles_dead_letters(ReserveSeat)(dead.append)
    queue = bus.queue_of(ReserveSeat)
    headers = {
        "cloudEvents_id": "bad-1",
        "cloudEvents_source": "raw",
        "cloudEvents_specversion": "1.0",
        "cloudEvents_type": "it.rabbit.reserve_seat",
        "cloudEvents_dataversion": "1",
    }
    with bus:
        connection, channel = _raw_channel(amqp_url)
        channel.basic_publish(
            amqp.Message(
                b'{"seat": ', content_type="application/json", application_headers=headers
            ),
            "",
            queue,
        )
        pickled = amqp.Message(
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04seat\x94K\x01s.",
            content_type="application/x-python-serialize",
            application_headers={**headers, "cloudEvents_id": "bad-2"},
        )
        channel.basic_publish(pickled, "", queue)
        connection.close()
        bus.send(ReserveSeat(seat=5))
        wait_until(lambda: len(dead) == 2 and len(seen) == 1, 30)
    assert seen.contracts == [ReserveSeat(seat=5)]
    reasons = sorted(r.reason for r in dead)
    assert reasons[0].startswith("body is not valid JSON")
    assert reasons[1].startswith("unsupported content type 'application/x-python-serialize'")


def test_a_command_from_amqp_publish_is_handled(amqp_bus, amqp_url):
    bus = amqp_bus()
    seen = Recorder()
    bus.handles(ReserveSeat)(seen)
    parts = urlsplit(amqp_url)
    foreign_url = f"{parts.scheme}://{parts.netloc}"  # librabbitmq reads no vhost "/" path
    command = [
        "amqp-publish",
        "--url",
        foreign_url,
        "-r",
        bus.queue_of(ReserveSeat),
        "-p",
        "-C",
        "application/json",
        "-b",
        json.dumps({"seat": 12}),
        "-H",
        "cloudEvents_id: from-amqp-tools-1",
        "-H",
        "cloudEvents_source: legacy-ticketing",
        "-H",
        "cloudEvents_specversion: 1.0",
        "-H",
        "cloudEvents_type: it.rabbit.reserve_seat",
        "-H",
        "cloudEvents_dataversion: 1",
    ]
    with bus:
        subprocess.run(command, check=True, timeout=30, capture_output=True)
        assert seen.wait_for(1, timeout=30) == [ReserveSeat(seat=12)]
    envelope = seen.contexts[0].envelope
    assert (envelope.id, envelope.source) == ("from-amqp-tools-1", "legacy-ticketing")


def test_a_command_interchange_sent_is_readable_by_a_raw_client(amqp_bus, amqp_url):
    bus = amqp_bus()
    sent = bus.send(ReserveSeat(seat=3), correlation_id="trip-9")
    connection, channel = _raw_channel(amqp_url)
    try:
        message = channel.basic_get(bus.queue_of(ReserveSeat), no_ack=True)
    finally:
        connection.close()
    assert message is not None
    assert json.loads(message.body) == {"seat": 3}
    assert message.properties["content_type"] == "application/json"
    assert message.properties["delivery_mode"] == 2
    headers = message.properties["application_headers"]
    assert headers["cloudEvents_id"] == sent
    assert headers["cloudEvents_type"] == "it.rabbit.reserve_seat"
    assert headers["cloudEvents_specversion"] == "1.0"
    assert headers["cloudEvents_correlationid"] == "trip-9"


def test_quorum_queues_carry_commands_when_asked(amqp_url, amqp_bus):
    separator = "&" if "?" in amqp_url else "?"
    bus = amqp_bus(
        backends={
            "commands": f"{amqp_url}{separator}queue_type=quorum",
            "events": f"memory://{uuid.uuid4().hex}",
        },
        channel_prefix=f"quorum-{uuid.uuid4().hex[:8]}.",
    )
    seen = Recorder()
    bus.handles(ReserveSeat)(seen)
    with bus:
        bus.send_many([ReserveSeat(seat=i) for i in range(20)])
        assert sorted(c.seat for c in seen.wait_for(20, timeout=30)) == list(range(20))
    connection, channel = _raw_channel(amqp_url)
    try:
        # the same arguments but a classic type are refused: proof it is a quorum queue
        with pytest.raises(amqp.exceptions.PreconditionFailed, match="x-queue-type"):
            channel.queue_declare(
                bus.queue_of(ReserveSeat),
                durable=True,
                auto_delete=False,
                arguments=queue_arguments(bus.queue_of(ReserveSeat), "classic"),
            )
    finally:
        connection.close()


def test_a_message_whose_consumer_died_counts_that_delivery_and_cannot_loop_forever(
    amqp_bus, amqp_url
):
    bus = amqp_bus(retry={"max_attempts": 1, "max_deliveries": 1, "initial_delay": 0.05})
    seen, dead = Recorder(), []
    bus.handles(ReserveSeat)(seen)
    bus.handles_dead_letters(ReserveSeat)(dead.append)
    sent = bus.send(ReserveSeat(seat=13))
    # A consumer takes the command and dies before acknowledging it.
    connection, channel = _raw_channel(amqp_url)
    taken: list[amqp.Message] = []
    channel.basic_consume(bus.queue_of(ReserveSeat), callback=taken.append, no_ack=False)
    deadline = time.monotonic() + 30
    while not taken and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=1)
    assert taken, "the raw consumer never got the command"
    connection.close()  # unacknowledged: RabbitMQ requeues it, marked only "redelivered"
    with bus:
        wait_until(lambda: len(dead) == 1, 30)
    assert len(seen) == 0, "a message already delivered max_attempts times must not run again"
    assert dead[0].envelope.id == sent
    assert dead[0].reason.startswith("delivered 2 times without an answer (max_deliveries 1)")
    assert dead[0].error == "PoisonMessage"
