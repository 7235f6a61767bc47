"""RabbitMQ restarted under load: nothing confirmed is lost, nothing hangs, nothing is handled
twice after dedupe."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from interchange import Bus, Settings
from interchange.adapters import TransportError
from interchange.contracts import Command
from interchange.testing import wait_until

pytestmark = pytest.mark.amqp


class Debit(Command, name="fault.rabbit.debit", version=1):
    n: int


class Balance(Command, name="fault.rabbit.balance", version=1):
    n: int


def test_a_broker_restart_mid_stream_loses_no_confirmed_command(amqp_url, restart_broker):
    settings = Settings(
        backends={"commands": amqp_url, "events": f"memory://{uuid.uuid4().hex}"},
        channel_prefix=f"fault-{uuid.uuid4().hex[:8]}.",
        retry={"max_attempts": 5, "initial_delay": 0.05},
    )
    consumer, producer = Bus(settings), Bus(settings)
    handled: list[int] = []
    lock = threading.Lock()

    @consumer.handles(Debit)
    def debit(cmd, ctx):
        with lock:
            handled.append(cmd.n)

    @consumer.handles(Balance)
    def balance(cmd: Balance) -> Balance:
        return Balance(n=cmd.n + 1)

    confirmed: list[int] = []
    refused: list[tuple[int, str]] = []
    window: dict[str, float] = {}

    def restart() -> None:
        window["began"] = time.monotonic()
        restart_broker("rabbitmq")
        window["ended"] = time.monotonic()

    sent_at: list[float] = []
    try:
        with consumer:
            # a request before the restart leaves its connection idle in the requester's pool
            assert producer.request(Balance(n=1), timeout=10) == Balance(n=2)
            restarting = threading.Thread(target=restart)
            n = after = 0
            # Send until the restart is over and 100 more went out after it: the stream spans
            # the whole restart, whatever it takes.
            while n < 20_000 and after < 100:
                if n == 100:
                    restarting.start()
                sent_at.append(time.monotonic())
                after += "ended" in window
                try:
                    producer.send(Debit(n=n))
                    confirmed.append(n)
                except TransportError as error:  # a typed error, never a hang or a lie
                    refused.append((n, type(error).__name__))
                if n >= 100:
                    time.sleep(0.005)  # pace the stream so it spans the restart
                n += 1
            restarting.join(120)
            wait_until(
                lambda: set(confirmed) <= set(handled),
                90,
                message=lambda: f"missing: {sorted(set(confirmed) - set(handled))[:10]}",
            )
            # that connection died with the broker: the next request must not fail on it
            assert producer.request(Balance(n=41), timeout=10) == Balance(n=42)
    finally:
        consumer.close()
        producer.close()
    during = [t for t in sent_at if window["began"] <= t <= window["ended"]]
    assert during, "no send was in flight while RabbitMQ restarted: the test proved nothing"
    assert len(confirmed) + len(refused) == n
    assert set(confirmed) <= set(handled), "a confirmed command was lost"
    assert len(handled) == len(set(handled)), "dedupe must keep each command's effect single"
    assert len(confirmed) >= n - len(during), f"the publisher rode out the restart: {refused[:5]}"
