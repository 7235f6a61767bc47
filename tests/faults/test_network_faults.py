"""Network faults through toxiproxy, on each backend: a producer and a consumer both reach the
broker through its proxy while a fault is on it, mid-stream; the producer's fallback (Redis,
reached directly) takes what the primary cannot. After the fault heals, every message sent was
handled once, no call raised, no corrupt message reached a handler.

    latency      500 ms each way: publishes slow, nothing spooled (nothing timed out)
    black hole   data dropped both ways, connections left open (toxiproxy's ``timeout`` 0):
                 calls fail over within ``fallback_timeout``, consumers reconnect after healing
    reset_peer   every connection reset: reconnect, redeliver, dedupe
    limit_data   connections cut after 2 KB, mid-frame: reconnect; no half message handled

Set INTERCHANGE_FAULT_REPORT to a file to append each outcome as a JSON line (the README's
fault table comes from such a run).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass

import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.testing import wait_until
from tests.faults.toxics import Toxiproxy


class Job(Command, name="fault.net.job", version=1):
    n: int


class Tick(Event, name="fault.net.tick", version=1):
    key: str
    n: int


FALLBACK_TIMEOUT = 2.0
FAULTS: dict[str, tuple[str, dict[str, int]]] = {
    "latency": ("latency", {"latency": 500}),
    "black hole": ("timeout", {"timeout": 0}),
    "reset_peer": ("reset_peer", {"timeout": 0}),
    "limit_data": ("limit_data", {"bytes": 2048}),
}
BACKENDS = {"rabbitmq": "amqp_url", "redis": "redis_url", "kafka": "kafka_url"}


@dataclass
class Outcome:
    backend: str
    fault: str
    sent: int
    lost: int
    duplicate_effects: int
    dead_letters: int
    raised: int
    spooled: int
    slowest_call: float
    recovered_in: float


def _buses(backend: str, url: str, redis_url: str) -> tuple[Bus, Bus, str]:
    """(producer, consumer, side): both through ``url`` (the proxy); the producer's fallback is
    Redis reached directly."""
    side, other = ("events", "commands") if backend == "kafka" else ("commands", "events")
    prefix = f"net-{uuid.uuid4().hex[:8]}."
    spare = f"memory://{uuid.uuid4().hex}"
    routes = {"fault.net.tick": {"partition_key": "key"}}
    producer = Bus(
        Settings(
            backends={
                side: url,
                other: spare,
                "fallback": redis_url,
                "fallback_timeout": FALLBACK_TIMEOUT,
                "cool_down": 0.5,
                "drain_interval": 0.2,
            },
            channel_prefix=prefix,
            routes=routes,
        )
    )
    consumer = Bus(
        Settings(backends={side: url, other: spare}, channel_prefix=prefix, routes=routes)
    )
    return producer, consumer, side


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_network_fault_mid_stream_loses_nothing_and_applies_nothing_twice(
    request, toxiproxy: Toxiproxy, redis_url, backend, fault
):
    proxy = toxiproxy.proxy(backend)
    producer, consumer, side = _buses(
        backend, proxy.behind(request.getfixturevalue(BACKENDS[backend])), redis_url
    )
    calls: Counter[int] = Counter()
    dead: list[object] = []
    lock = threading.Lock()

    def handle(message, ctx) -> None:
        with lock:
            calls[message.n] += 1

    def dead_letter(record) -> None:
        with lock:
            dead.append(record)

    if backend == "kafka":
        consumer.subscribes(Tick, group="net")(handle)
        consumer.handles_dead_letters(Tick, group="net")(dead_letter)
        call = lambda n: producer.publish(Tick(key=f"k{n % 5}", n=n))  # noqa: E731
    else:
        consumer.handles(Job)(handle)
        consumer.handles_dead_letters(Job)(dead_letter)
        call = lambda n: producer.send(Job(n=n))  # noqa: E731

    kind, attributes = FAULTS[fault]
    sent: list[int] = []
    raised: list[str] = []
    slowest = 0.0

    def stream(until: float) -> None:
        nonlocal slowest
        while time.monotonic() < until:
            n = len(sent)
            started = time.monotonic()
            try:
                call(n)
                sent.append(n)
            except Exception as error:  # must not happen while the fallback is up
                raised.append(repr(error))
                sent.append(n)  # counted, so a raise cannot hide as "lost nothing"
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.01)

    try:
        with consumer, producer:
            call(-1)  # connected, declared, and the consumer's group exists
            wait_until(lambda: calls[-1] >= 1, 60, message="warm-up message handled")
            stream(time.monotonic() + 0.5)
            before = len(sent)
            for direction in ("downstream", "upstream"):
                proxy.toxic(kind, direction, **attributes)
            slowest = 0.0
            stream(time.monotonic() + 3.0)
            proxy.heal()
            healed = time.monotonic()
            wait_until(
                lambda: all(calls[n] for n in sent),
                120,
                message=lambda: f"handled {sum(1 for n in sent if calls[n])} of {len(sent)}",
            )
            recovered_in = time.monotonic() - healed
            status = producer.failover_status()[side]
    finally:
        toxiproxy.reset()
        consumer.close()
        producer.close()

    outcome = Outcome(
        backend=backend,
        fault=fault,
        sent=len(sent),
        lost=sum(1 for n in sent if not calls[n]),
        duplicate_effects=sum(count - 1 for count in calls.values() if count > 1),
        dead_letters=len(dead),
        raised=len(raised),
        spooled=status["spooled"],
        slowest_call=round(slowest, 2),
        recovered_in=round(recovered_in, 2),
    )
    if report := os.environ.get("INTERCHANGE_FAULT_REPORT"):
        with open(report, "a") as file:
            file.write(json.dumps(asdict(outcome)) + "\n")
    assert len(sent) > before, "messages were sent while the fault was on"
    assert raised == [], f"no call may fail while the fallback is up: {raised[:3]}"
    assert outcome.lost == 0, outcome
    assert outcome.duplicate_effects == 0, outcome
    assert dead == [], f"a cut connection must not turn into bad messages: {dead[:5]}"
    if fault == "latency":
        assert slowest >= 0.45, f"the latency was on: slowest call {slowest:.2f}s"
        assert outcome.spooled == 0, f"nothing may time out at 500 ms: {outcome}"
    if fault == "black hole":
        assert slowest <= FALLBACK_TIMEOUT + 1.5, f"failed over within fallback_timeout: {outcome}"
        assert outcome.spooled > 0, outcome
