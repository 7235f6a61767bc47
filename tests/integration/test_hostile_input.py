"""Hostile input from clients we did not write — amqp-publish (amqp-tools), kcat and redis-cli —
on every backend: each bad message is dead-lettered with its reason, the consumer stays alive,
and the next good message (sent the same way) is handled."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from interchange import Bus, Settings
from interchange.contracts import Command, Event
from interchange.dead_letters import DeadLetterRecord
from interchange.testing import wait_until


class Parcel(Command, name="hostile.parcel", version=1):
    n: int


class Scanned(Event, name="hostile.scanned", version=1):
    n: int


PICKLE = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04seat\x94K\x01s."
LIMIT = 64 * 1024  # the consumers' max_body_bytes


@dataclass(frozen=True)
class Hostile:
    body: bytes
    expect: str  # in the dead letter's reason
    headers: dict[str, str] = field(default_factory=dict)  # over the good ones; "" drops one
    content_type: str = "application/json"


INPUTS = {
    "malformed JSON": Hostile(b'{"n": }', "not valid JSON"),
    "truncated JSON": Hostile(b'{"n": 1', "not valid JSON"),
    "invalid UTF-8": Hostile(b'{"n": "\xff\xfe"}', "not valid JSON"),
    "nesting bomb": Hostile(b"[" * 20_000 + b"]" * 20_000, "not valid JSON"),
    "body over the limit": Hostile(
        b'{"n": 1, "pad": "' + b"x" * LIMIT + b'"}', "exceeds the limit"
    ),
    "wrong schema": Hostile(b'{"n": "seven"}', "n: Input should be a valid integer"),
    "unknown type": Hostile(b'{"n": 1}', "unknown contract type", {"type": "hostile.nobody"}),
    "unknown version": Hostile(b'{"n": 1}', "unknown version 99", {"dataversion": "99"}),
    "pickle": Hostile(PICKLE, "unsupported content type", content_type="application/python-pickle"),
    "YAML": Hostile(b"n: 1", "unsupported content type", content_type="application/x-yaml"),
    "CRLF in a header": Hostile(b'{"n": 1}', "control character", {"x-note": "a\r\nInjected: 1"}),
    "100 KB header": Hostile(b'{"n": 1}', "exceeds the limit", {"x-note": "y" * 100_000}),
    "no CloudEvents type": Hostile(b'{"n": 1}', "type header: not a CloudEvent", {"type": ""}),
    "no CloudEvents id": Hostile(b'{"n": 1}', "missing CloudEvents header(s)", {"id": ""}),
}


@dataclass
class Target:
    """A consumer on one backend, and a foreign client to put raw messages in front of it."""

    backend: str
    prefix: str  # the CloudEvents header prefix on this backend
    inject: Callable[[bytes, dict[str, str]], None]
    contract: str
    handled: list[int] = field(default_factory=list)
    dead: list[DeadLetterRecord] = field(default_factory=list)

    def headers(self, probe: str, hostile: Hostile | None = None) -> dict[str, str]:
        attributes = {
            "id": f"{probe}-{uuid.uuid4().hex[:8]}",
            "source": "foreign-client",
            "type": self.contract,
            "specversion": "1.0",
            "dataversion": "1",
        }
        extra = {}
        for name, value in (hostile.headers if hostile else {}).items():
            (attributes if name in attributes or name == "type" else extra)[name] = value
        headers = {self.prefix + k: v for k, v in attributes.items() if v}
        headers["content-type"] = hostile.content_type if hostile else "application/json"
        return {**headers, **extra, "x-probe": probe}


def _run(command: list[str], body: bytes) -> None:
    done = subprocess.run(command, input=body, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def _rabbitmq(url: str, queue: str) -> Callable[[bytes, dict[str, str]], None]:
    parts = urlsplit(url)
    foreign = f"{parts.scheme}://{parts.netloc}"  # librabbitmq reads no vhost "/" path

    def inject(body: bytes, headers: dict[str, str]) -> None:
        content_type = headers.pop("content-type")
        flags = [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
        _run(
            ["amqp-publish", "--url", foreign, "-r", queue, "-p", "-C", content_type, *flags], body
        )

    return inject


def _kafka(url: str, topic: str) -> Callable[[bytes, dict[str, str]], None]:
    servers = urlsplit(url).netloc

    def inject(body: bytes, headers: dict[str, str]) -> None:
        assert b"\n" not in body, "kcat reads one message a line"
        flags = [arg for k, v in headers.items() for arg in ("-H", f"{k}={v}")]
        _run(["kcat", "-P", "-b", servers, "-t", topic, *flags], body)

    return inject


def _redis(url: str, stream: str) -> Callable[[bytes, dict[str, str]], None]:
    parts = urlsplit(url)

    def inject(body: bytes, headers: dict[str, str]) -> None:
        fields = [part for k, v in headers.items() for part in (k, v)]
        database = parts.path.strip("/") or "0"  # the fixture's URL may name another database
        where = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "-n", database]
        command = ["redis-cli", *where]
        _run([*command, "-x", "XADD", stream, "*", *fields, "data"], body)  # -x: body last

    return inject


URL_FIXTURES = {"rabbitmq": "amqp_url", "kafka": "kafka_url", "redis": "redis_url"}


@pytest.fixture(scope="module", params=list(URL_FIXTURES))
def target(request) -> Iterator[Target]:
    backend = request.param
    url = request.getfixturevalue(
        {"rabbitmq": "amqp_url", "kafka": "kafka_url"}.get(backend, "redis_url")
    )
    side, other = ("events", "commands") if backend == "kafka" else ("commands", "events")
    bus = Bus(  # module-wide: built before the per-test fixture clears the environment
        Settings.without_environment(
            backends={side: url, other: f"memory://{uuid.uuid4().hex}"},
            channel_prefix=f"hostile-{uuid.uuid4().hex[:8]}.",
            max_body_bytes=LIMIT,
        )
    )
    if backend == "kafka":
        found = Target(backend, "ce_", _kafka(url, bus.topic_of(Scanned)), Scanned.contract_name)
        bus.subscribes(Scanned, group="hostile")(lambda e, ctx: found.handled.append(e.n))
        bus.handles_dead_letters(Scanned, group="hostile")(found.dead.append)
        bus.publish(Scanned(n=-1))  # the topic exists before the group joins
    else:
        queue = bus.queue_of(Parcel)
        prefix = "cloudEvents_" if backend == "rabbitmq" else "ce_"
        inject = (_rabbitmq if backend == "rabbitmq" else _redis)(url, queue)
        found = Target(backend, prefix, inject, Parcel.contract_name)
        bus.handles(Parcel)(lambda c, ctx: found.handled.append(c.n))
        bus.handles_dead_letters(Parcel)(found.dead.append)
        bus.send(Parcel(n=-1))
    with bus:
        wait_until(lambda: -1 in found.handled, 60, message="the consumer is up")
        yield found
    bus.close()


@pytest.mark.parametrize("name", list(INPUTS))
def test_hostile_input_is_dead_lettered_with_its_reason_and_the_next_good_one_handled(
    target: Target, name: str
):
    hostile = INPUTS[name]
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    target.inject(hostile.body, target.headers(probe, hostile))
    good = len(target.handled) + 1000
    target.inject(b'{"n": %d}' % good, target.headers(f"{probe}-good"))

    def mine() -> list[DeadLetterRecord]:
        return [r for r in target.dead if r.message.headers.get("x-probe") == probe]

    wait_until(lambda: good in target.handled, 60, message=f"{name}: the next good one handled")
    wait_until(lambda: mine(), 60, message=f"{name}: dead-lettered on {target.backend}")
    (record,) = mine()
    assert hostile.expect in record.reason, record.reason
    assert record.envelope is None, "a hostile message never decodes"
    assert target.handled.count(good) == 1
