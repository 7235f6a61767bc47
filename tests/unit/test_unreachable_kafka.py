"""A Kafka nobody answers for: every verb fails with our typed error, within publish_timeout."""

from __future__ import annotations

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
