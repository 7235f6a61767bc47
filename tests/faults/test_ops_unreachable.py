"""The ops port while a backend refuses or is black-holed (a toxiproxy proxy of the test's own in
front of it): /readyz and /metrics still answer, within 3 s, saying which backend is down and
leaving out (and counting) the measurements that could not be made."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from interchange import Bus, Settings
from interchange.contracts import Command
from interchange.ops import serve_ops
from interchange.testing import wait_until
from tests.faults.toxics import Proxy, _call
from tests.net import closed_port
from tests.scrape import metric_sum

ANSWER_WITHIN = 3.0


class Parcel(Command, name="faults.opsdown.parcel", version=1):
    n: int


@pytest.fixture
def own_proxy() -> Iterator[Callable[[str], Proxy]]:
    """Proxies of this test's own (unique names; the shared ones are left alone), deleted at
    the end: ``own_proxy("127.0.0.1:6379")``."""
    import os

    from interchange.testing.brokers import unavailable

    api = os.environ.get("INTERCHANGE_TOXIPROXY_URL", "").rstrip("/")
    if not api:
        unavailable("network fault tests need toxiproxy: compose/native/up starts it")
    made: list[str] = []

    def make(upstream: str) -> Proxy:
        name = f"opsdown-{uuid.uuid4().hex[:10]}"
        listen = f"127.0.0.1:{closed_port()}"
        try:
            _call("POST", f"{api}/proxies", {"name": name, "listen": listen, "upstream": upstream})
        except OSError as error:
            unavailable(f"toxiproxy at {api} does not answer: {error}")
        made.append(name)
        return Proxy(api, name, listen)

    yield make
    for name in made:
        _call("DELETE", f"{api}/proxies/{name}")


def _silence(proxy: Proxy) -> None:
    """Black-hole every connection, open and new: nothing gets through, nothing is closed."""
    proxy.toxic("timeout", "upstream", timeout=0)
    proxy.toxic("timeout", "downstream", timeout=0)


def _refuse(proxy: Proxy) -> None:
    _call("POST", f"{proxy.api}/proxies/{proxy.name}", {"enabled": False})


def _timed(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = client.get(path)
    return answer, time.monotonic() - started


@pytest.mark.amqp
@pytest.mark.redis
@pytest.mark.parametrize("fault", [_refuse, _silence], ids=["refusing", "black-holed"])
def test_an_unreachable_fallback_is_reported_down_and_metrics_still_answer(
    own_proxy, amqp_url, redis_url, fault
):
    proxy = own_proxy("127.0.0.1:6379")
    fallback = proxy.behind(redis_url).rsplit("/", 1)[0] + f"/{random.randint(1, 15)}"
    bus = Bus(
        Settings.without_environment(
            backends={"commands": amqp_url, "events": "memory://", "fallback": fallback},
            channel_prefix=f"opsdown-{uuid.uuid4().hex[:8]}.",
        )
    )
    bus.handles(Parcel)(lambda cmd: None)
    ops = serve_ops(bus)
    try:
        with bus, httpx.Client(base_url=ops.url, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            fault(proxy)

            def fallback_down() -> bool:
                answer, took = _timed(client, "/readyz")
                assert took < ANSWER_WITHIN, f"/readyz took {took:.1f}s"
                return answer.status_code == 503

            wait_until(fallback_down, timeout=15, message="/readyz saying 503")
            answer, took = _timed(client, "/readyz")
            body = answer.json()
            assert answer.status_code == 503
            assert not body["ready"]
            assert body["backends"]["fallback"]["up"] is False
            assert body["backends"]["fallback"]["detail"]
            assert body["backends"]["commands"]["up"] is True
            assert body["failover"]["commands"]["spool_depth"] is None
            for _ in range(3):
                metrics, took = _timed(client, "/metrics")
                assert metrics.status_code == 200
                assert took < ANSWER_WITHIN, f"/metrics took {took:.1f}s"
            text = metrics.text
            assert metric_sum(text, "interchange_measure_errors_total", measurement="spool_depth")
            assert "\ninterchange_failover_spool_depth " not in text  # left out, not a stale 0
            assert metric_sum(text, "interchange_consumers_running") == 1
            assert metric_sum(text, "interchange_failover_circuit_open", side="commands") == 0
            _call("POST", f"{proxy.api}/proxies/{proxy.name}", {"enabled": True})
            proxy.heal()
    finally:
        ops.close()
        bus.close()


@pytest.mark.amqp
def test_metrics_answer_within_3s_while_rabbitmq_is_black_holed(own_proxy, amqp_url):
    proxy = own_proxy("127.0.0.1:5672")
    bus = Bus(
        Settings.without_environment(
            backends={"commands": proxy.behind(amqp_url), "events": "memory://"},
            channel_prefix=f"opsdown-{uuid.uuid4().hex[:8]}.",
        )
    )
    bus.handles(Parcel)(lambda cmd: None)
    queue = bus.queue_of(Parcel)
    ops = serve_ops(bus)
    try:
        with bus, httpx.Client(base_url=ops.url, timeout=90) as client:
            first = client.get("/metrics").text
            assert metric_sum(first, "interchange_backlog_messages", channel=queue) == 0
            assert f'channel="{queue}"' in first
            _silence(proxy)
            scraped: list[str] = []

            def backlog_left_out() -> bool:
                metrics, took = _timed(client, "/metrics")
                assert metrics.status_code == 200
                assert took < ANSWER_WITHIN, f"/metrics took {took:.1f}s"
                scraped.append(metrics.text)
                return f'interchange_backlog_messages{{channel="{queue}"' not in metrics.text

            wait_until(backlog_left_out, timeout=15, message="the backlog gauge left out")
            for _ in range(2):  # the measurement still waiting is not waited for again
                assert backlog_left_out()
            text = scraped[-1]
            assert metric_sum(text, "interchange_measure_errors_total", measurement="backlog")
            ready, took = _timed(client, "/readyz")
            assert took < ANSWER_WITHIN, f"/readyz took {took:.1f}s"
            assert ready.status_code == 503
            assert ready.json()["backends"]["commands"]["up"] is False
            proxy.heal()  # the Bus's own stop is not what this test is about
    finally:
        ops.close()
        bus.close()
