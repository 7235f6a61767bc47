"""A Kafka nobody answers for: every verb fails with our typed error, within publish_timeout."""

from __future__ import annotations

import logging
import time

import pytest

from interchange.adapters import BackendUnavailable, TransportMessage, open_events
from tests.net import closed_port


@pytest.fixture
def events():
    transport = open_events(f"kafka://127.0.0.1:{closed_port()}?publish_timeout=2")
    yield transport
    transport.close()


def test_a_publish_fails_within_its_publish_timeout(events):
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        events.publish("t", TransportMessage("m-1", b"{}"))
    assert time.monotonic() - started < 4.0


def test_replay_raises_our_typed_error_never_a_kafka_exception(events):
    with pytest.raises(BackendUnavailable, match="while trying to read the offsets of 't'"):
        list(events.replay("t"))


def test_seek_raises_our_typed_error_never_a_kafka_exception(events):
    with pytest.raises(BackendUnavailable):
        events.seek("t", "g", "earliest")


def test_librdkafka_lines_go_to_python_logging_rate_limited_never_raw_to_stderr(
    events, caplog, capfd, monkeypatch
):
    from interchange.adapters.kafka.logs import LOGGER, RateLimit

    monkeypatch.setattr(LOGGER, "filters", [RateLimit()])  # nothing held from earlier tests
    with caplog.at_level(logging.DEBUG, logger="interchange.adapters.kafka.librdkafka"):
        for n in range(3):  # three failed publishes: librdkafka retries its connects meanwhile
            with pytest.raises(BackendUnavailable):
                events.publish("t", TransportMessage(f"m-{n}", b"{}"))
    lines = [r for r in caplog.records if r.name == "interchange.adapters.kafka.librdkafka"]
    assert 0 < len(lines) < 20, [r.getMessage() for r in lines]
    assert "FAIL" in lines[0].getMessage()
    assert "%3|" not in capfd.readouterr().err


def test_the_rate_limit_keeps_one_line_per_kind_and_counts_the_rest():
    from interchange.adapters.kafka.logs import RateLimit

    limit = RateLimit(every=60)
    records = [
        logging.LogRecord("k", logging.ERROR, __file__, 1, "%s [%s] %s", (kind, "c", "x"), None)
        for kind in ("FAIL", "FAIL", "FAIL", "ERROR")
    ]
    assert [limit.filter(r) for r in records] == [True, False, False, True]
    limit._last["FAIL"] -= 61  # a minute later
    again = logging.LogRecord(
        "k", logging.ERROR, __file__, 1, "%s [%s] %s", ("FAIL", "c", "y"), None
    )
    assert limit.filter(again)
    assert again.getMessage().endswith("(2 more FAIL line(s) held back)")
