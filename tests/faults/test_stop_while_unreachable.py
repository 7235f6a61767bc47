"""``interchange run`` while a broker does not answer: a SIGTERM is obeyed within the grace
period (plus about a second), exit 0, with no handler reported running — whether the broker
went silent under a running service (a black hole: packets dropped, nothing refused), or does
not answer at start. Each test puts a toxiproxy proxy of its own in front of the real broker
(never the shared ones), or uses a port nothing listens on."""

from __future__ import annotations

import pytest

from interchange import Bus, Settings
from interchange.testing import wait_until
from tests.faults.running import (
    PROMPT,
    Ping,
    Pinged,
    Proxy,
    Service,
    black_hole,
    connections_to,
    own_proxy,
)
from tests.net import closed_port


def _settings(service: Service, backends: dict[str, str]) -> Settings:
    return Settings.without_environment(backends=backends, channel_prefix=service.prefix)


def _stopped_promptly(service: Service) -> None:
    code, took = service.terminate()
    assert "outlived" not in service.log, service.log
    assert code == 0, service.log
    assert took < PROMPT, f"took {took:.1f}s: {service.log}"


@pytest.mark.amqp
@pytest.mark.parametrize("noticed", [False, True], ids=["silent", "reconnecting"])
def test_sigterm_with_rabbitmq_black_holed_exits_within_the_grace(tmp_path, amqp_url, noticed):
    with own_proxy(amqp_url) as proxy:
        # heartbeat=1: the lost connection is noticed within seconds, and reconnecting begins
        url = proxy.behind(amqp_url) + ("?heartbeat=1" if noticed else "")
        service = Service(tmp_path, {"commands": url, "events": "memory://"})
        try:
            service.wait_for("serving")
            with Bus(_settings(service, {"commands": amqp_url, "events": "memory://"})) as bus:
                bus.send(Ping(n=1))
                service.wait_for("handled 1")  # the consumer is connected and consuming
                bus.close()
            black_hole(proxy)
            if noticed:
                port = int(proxy.listen.rsplit(":", 1)[1])
                service.wait_for("lost its connection", within=30)
                # stopped while it connects again (the publisher's connection is the other)
                wait_until(lambda: connections_to(port) >= 2, 30)
            _stopped_promptly(service)
        finally:
            service.kill()


@pytest.mark.redis
@pytest.mark.parametrize("side", ["commands", "events", "fallback"])
def test_sigterm_with_redis_black_holed_exits_within_the_grace(tmp_path, redis_url, side):
    with own_proxy(redis_url) as proxy:
        url = proxy.behind(redis_url)
        backends = {"commands": "memory://", "events": "memory://", side: url}
        service = Service(tmp_path, backends)
        try:
            service.wait_for("serving")
            if side != "fallback":  # (the fallback's drainer reads the spool all along)
                direct = {**backends, side: redis_url}
                with Bus(_settings(service, direct)) as bus:
                    bus.publish(Pinged(n=1)) if side == "events" else bus.send(Ping(n=1))
                    service.wait_for("handled 1")
                    bus.close()
            black_hole(proxy)  # the read under way, and every one after, gets no answer
            _stopped_promptly(service)
        finally:
            service.kill()


def _unreachable(kind: str, real_url: str, proxy: Proxy) -> str:
    """A URL of the broker's scheme that is refused (a closed port) or black-holed."""
    scheme = real_url.split("://", 1)[0]
    if kind == "refused":
        tail = "//" if scheme == "amqp" else ""
        return f"{scheme}://guest:guest@127.0.0.1:{closed_port()}{tail}" if scheme == "amqp" else (
            f"{scheme}://127.0.0.1:{closed_port()}{tail}")  # fmt: skip
    black_hole(proxy)
    return proxy.behind(real_url)


BROKERS = [
    pytest.param("amqp_url", "commands", marks=pytest.mark.amqp, id="rabbitmq"),
    pytest.param("kafka_url", "events", marks=pytest.mark.kafka, id="kafka"),
    pytest.param("redis_url", "commands", marks=pytest.mark.redis, id="redis"),
]


@pytest.mark.parametrize("kind", ["refused", "black-holed"])
@pytest.mark.parametrize(("fixture", "side"), BROKERS)
def test_sigterm_while_waiting_for_a_broker_at_start_exits_at_once(
    request, tmp_path, fixture, side, kind
):
    real = request.getfixturevalue(fixture)
    with own_proxy(real) as proxy:
        url = _unreachable(kind, real, proxy)
        backends = {"commands": "memory://", "events": "memory://", side: url}
        service = Service(tmp_path, backends, "--wait-for-brokers", "60")
        try:
            service.wait_for("starting svc:bus")
            _stopped_promptly(service)
            assert "serving" not in service.log
        finally:
            service.kill()
