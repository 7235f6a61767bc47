"""``interchange run`` with a broker down at start: "serving" is printed only once the consumers
run (with the backends it serves, passwords redacted); ``--wait-for-brokers`` tries again until
the broker answers, and exit code 3 says it never did."""

from __future__ import annotations

import re

import pytest

from interchange import Bus, Settings
from tests.faults.running import Ping, Service, enable, own_proxy
from tests.net import closed_port


@pytest.mark.amqp
def test_serving_is_printed_once_the_broker_answers_with_the_backends_redacted(tmp_path, amqp_url):
    with own_proxy(amqp_url) as proxy:
        enable(proxy, False)  # refused at start
        url = proxy.behind(amqp_url) + "?connect_timeout=1"
        service = Service(
            tmp_path, {"commands": url, "events": "memory://"}, "--wait-for-brokers", "60"
        )
        try:
            service.wait_for("a broker does not answer")
            assert "serving" not in service.log
            enable(proxy, True)
            service.wait_for("serving svc:bus")
            [line] = [line for line in service.log.splitlines() if "serving svc:bus" in line]
            port = proxy.listen.rsplit(":", 1)[1]
            assert re.fullmatch(
                rf"serving svc:bus \(pid \d+\) on commands "
                rf"amqp://guest:\*\*\*@127\.0\.0\.1:{port}//\?connect_timeout=1, events memory://",
                line.strip(),
            ), line
            assert "guest:guest" not in service.log
            settings = Settings.without_environment(
                backends={"commands": amqp_url, "events": "memory://"},
                channel_prefix=service.prefix,
            )
            with Bus(settings) as bus:
                bus.send(Ping(n=7))
                service.wait_for("handled 7")  # serving meant consuming
                bus.close()
            code, _ = service.terminate()
            assert code == 0, service.log
        finally:
            service.kill()


DOWN = [
    pytest.param(
        lambda: f"amqp://guest:guest@127.0.0.1:{closed_port()}//?connect_timeout=1",
        "commands",
        id="rabbitmq",
    ),
    pytest.param(
        lambda: f"kafka://127.0.0.1:{closed_port()}?publish_timeout=1", "events", id="kafka"
    ),
    pytest.param(lambda: f"redis://127.0.0.1:{closed_port()}/0", "commands", id="redis"),
]


@pytest.mark.parametrize(("down", "side"), DOWN)
def test_a_broker_down_at_start_exits_3_without_serving(tmp_path, down, side):
    backends = {"commands": "memory://", "events": "memory://", side: down()}
    service = Service(tmp_path, backends)
    try:
        code = service.process.wait(60)
    finally:
        service.kill()
    assert code == 3, service.log
    assert "serving" not in service.log
    last = service.log.strip().splitlines()[-1]
    assert last.startswith("interchange: error: the brokers did not answer: "), service.log
    assert "guest:guest" not in service.log


@pytest.mark.amqp
def test_wait_for_brokers_tries_again_then_exits_3(tmp_path):
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}//?connect_timeout=1"
    service = Service(tmp_path, {"commands": url, "events": "memory://"}, "--wait-for-brokers", "5")
    try:
        code = service.process.wait(60)
    finally:
        service.kill()
    assert code == 3, service.log
    assert service.log.count("a broker does not answer") >= 2, service.log  # it tried again
    assert "interchange: error: the brokers did not answer within 5s: " in service.log
    assert "serving" not in service.log
