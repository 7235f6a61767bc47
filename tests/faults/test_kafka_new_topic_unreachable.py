"""A topic this process never used, with Kafka unreachable (RELIABILITY.md, fault test 18): the
topic's metadata and creation are bounded by the same deadline as producing, so a publish with
a fallback is spooled within ``fallback_timeout``, and without one fails within
``publish_timeout`` — never after librdkafka's or the admin client's own, longer waits."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from interchange import Bus, Settings
from interchange.adapters import BackendUnavailable, open_spool
from interchange.connectors.http import gateway
from interchange.contracts import Event
from tests.http.test_gateway import EXPOSED, OrderPlaced


class Metered(Event, name="fault.kafka.new_topic.metered", version=1):
    n: int


WITHIN = 1.5
"""fallback_timeout facing a black hole, and publish_timeout without a fallback."""
MARGIN = 1.0
"""What the call may take beyond its bound: spooling, closing a request, a loaded machine."""
REFUSED_WITHIN = 1.0
"""Connections refused: librdkafka reports every broker down, and the call gives up half a
second later (test_failover_faults.py holds a topic already in use to the same bound)."""


@pytest.fixture(params=["closed port", "black hole"])
def unreachable_kafka(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A kafka:// URL nobody answers on: a port nobody listens on (connections refused), or a
    socket that listens and never accepts (the kernel completes the handshake, then nothing
    is ever read or answered)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if request.param == "closed port":
        sock.close()
    else:
        sock.listen(0)
    try:
        yield f"kafka://127.0.0.1:{port}", request.param
    finally:
        sock.close()


@pytest.mark.redis
def test_first_publish_to_an_unseen_topic_is_spooled_within_fallback_timeout(
    unreachable_kafka: tuple[str, str], redis_url: str
) -> None:
    url, kind = unreachable_kafka
    # refused: fallback_timeout at its default, to show the call does not wait it out
    fallback_timeout, bound = (5.0, REFUSED_WITHIN) if kind == "closed port" else (WITHIN, WITHIN)
    prefix = f"unseen-{uuid.uuid4().hex[:8]}."
    bus = Bus(
        Settings(
            backends={
                "commands": "memory://",
                "events": url,
                "fallback": redis_url,
                "fallback_timeout": fallback_timeout,
            },
            channel_prefix=prefix,
        )
    )
    spool = open_spool(redis_url)
    line = f"{bus.drainer.sides[1].namespace}publish:{bus.topic_of(Metered)}"
    try:
        started = time.monotonic()
        event_id = bus.publish(Metered(n=1))
        elapsed = time.monotonic() - started

        assert elapsed < bound + MARGIN, f"spooled after {elapsed:.1f}s"
        assert [message.id for _, message in spool.head(line, 10)] == [event_id]
    finally:
        spool.remove(line, [spool_id for spool_id, _ in spool.head(line, 10)])
        spool.close()
        bus.close()


def test_without_fallback_an_unseen_topic_fails_within_publish_timeout(
    unreachable_kafka: tuple[str, str],
) -> None:
    url, _ = unreachable_kafka
    bus = Bus(
        Settings(
            backends={
                "commands": "memory://",
                "events": f"{url}?publish_timeout={WITHIN}",
            },
            channel_prefix=f"unseen-{uuid.uuid4().hex[:8]}.",
        )
    )
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1"):
            bus.publish(Metered(n=1))
        elapsed = time.monotonic() - started

        assert elapsed < WITHIN + MARGIN, f"failed after {elapsed:.1f}s"
    finally:
        bus.close()


@pytest.mark.redis
@pytest.mark.parametrize("fallback", [True, False], ids=["with fallback", "without"])
def test_the_gateway_answers_within_the_bound_for_an_unseen_topic(
    unreachable_kafka: tuple[str, str], redis_url: str, serve, fallback: bool
) -> None:
    url, _ = unreachable_kafka
    # with a fallback publish_timeout keeps its 30 s: only fallback_timeout may bound the call
    backends = {"commands": "memory://", "events": f"{url}?publish_timeout={WITHIN}"}
    if fallback:
        backends = {"commands": "memory://", "events": url, "fallback": redis_url}
        backends["fallback_timeout"] = WITHIN
    bus = Bus(Settings(backends=backends, channel_prefix=f"unseen-{uuid.uuid4().hex[:8]}."))
    spool = open_spool(redis_url)
    side = f"{bus.drainer.sides[1].namespace}" if bus.drainer else "events:"  # (no spool)
    line = f"{side}publish:{bus.topic_of(OrderPlaced)}"
    client = serve(gateway(bus, EXPOSED))
    try:
        started = time.monotonic()
        answer = client.post("/events/http.order_placed", json={"order_id": "A-1"})
        elapsed = time.monotonic() - started

        assert answer.status_code == (202 if fallback else 503), answer.text
        assert elapsed < WITHIN + MARGIN, f"answered after {elapsed:.1f}s"
    finally:
        spool.remove(line, [spool_id for spool_id, _ in spool.head(line, 10)])
        spool.close()
        bus.close()
