"""A port, a Redis db or a redis-py option's value that cannot work is InvalidURL naming it when
the Bus is built, never a bare ValueError at start or a port 0 tried for half a minute."""

from __future__ import annotations

import pytest

from interchange import Bus, Settings
from interchange.errors import InvalidURL


@pytest.mark.parametrize(
    ("side", "url", "named"),
    [
        ("commands", "amqp://guest:guest@127.0.0.1:notaport//", "port 'notaport'"),
        ("commands", "amqp://guest:guest@127.0.0.1:99999//", "port '99999'"),
        ("commands", "amqp://127.0.0.1:5672//;amqp://127.0.0.1:0//", "port '0'"),
        ("events", "kafka://127.0.0.1:notaport", "port 'notaport'"),
        ("events", "kafka://127.0.0.1:9092,[::1]:70000", "port '70000'"),
        ("commands", "redis://127.0.0.1:6379/abc", "Redis db 'abc'"),
        ("commands", "redis://127.0.0.1:6379/-1", "Redis db '-1'"),
        ("commands", "redis://127.0.0.1:6379/0?socket_timeout=-1", "socket_timeout='-1'"),
        ("commands", "redis://127.0.0.1:6379/0?socket_timeout=soon", "socket_timeout='soon'"),
        ("events", "redis://127.0.0.1:6379/0?db=x", "db='x'"),
    ],
)
def test_a_value_that_cannot_work_is_invalid_url_naming_it(side: str, url: str, named: str) -> None:
    with pytest.raises(InvalidURL) as raised:
        Bus(Settings.without_environment(backends={side: url}))
    assert named in str(raised.value)
    assert "guest:guest" not in str(raised.value)  # the password stays redacted


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672//",
        "amqp://127.0.0.1//",
        "redis://127.0.0.1:6379/15?socket_timeout=2.5",
        "redis://127.0.0.1",
        "kafka://127.0.0.1:9092,[::1]:9093",
    ],
)
def test_good_ports_and_dbs_are_taken(url: str) -> None:
    side = "events" if url.startswith("kafka") else "commands"
    Bus(Settings.without_environment(backends={side: url})).close()


def test_a_kafka_sasl_refusal_is_access_refused_not_a_transport_error() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from interchange.adapters.kafka.errors import mapped_errors
    from interchange.errors import AccessRefused

    for code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        with pytest.raises(AccessRefused, match="refused the credentials"):  # noqa: SIM117
            with mapped_errors("127.0.0.1:9092", "create topic"):
                raise KafkaException(KafkaError(code))
