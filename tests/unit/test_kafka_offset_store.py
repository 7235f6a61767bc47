"""A Kafka member's offset store when librdkafka refuses a partition for the moment: the
positions it can store are stored, the refused ones are kept for the next store, nothing is
raised into the reading loop, and a partition taken away forgets its kept position."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from interchange.adapters.kafka.consumer import GroupMember
from interchange.adapters.keyed import Watermarks


class RefusingClient:
    """Stores like librdkafka: the call fails only when no position could be stored (a
    partial refusal is reported per partition, which confluent-kafka does not surface)."""

    def __init__(self, refused: set[int], code: int = KafkaError._UNKNOWN_PARTITION) -> None:
        self.refused, self.code = refused, code
        self.stored: dict[int, int] = {}

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        usable = [tp for tp in offsets if tp.partition not in self.refused]
        if not usable:
            raise KafkaException(KafkaError(self.code))
        self.stored |= {tp.partition: tp.offset for tp in usable}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", 0)]


def member(client: Any) -> GroupMember:
    """A member with only what storing offsets uses (no broker)."""
    member = object.__new__(GroupMember)
    member.topic, member.group, member.consumer, member.lanes = "t", "g", client, None
    member._unstored, member._marks, member._generations = {}, Watermarks(), {}
    return member


@pytest.mark.parametrize("code", [KafkaError._UNKNOWN_PARTITION, KafkaError._STATE])
def test_a_refused_partition_is_kept_and_stored_with_the_next_store(code, caplog):
    client = RefusingClient(refused={1}, code=code)
    reader = member(client)
    with caplog.at_level(logging.WARNING, "interchange.adapters.kafka"):
        reader._store({1: 20})
    assert client.stored == {}
    assert reader._unstored == {1: 20}
    assert "offsets not stored yet for partitions 1" in caplog.text
    client.refused = set()
    reader._store({0: 11})
    assert client.stored == {0: 11, 1: 20}
    assert reader._unstored == {}


def test_a_newer_position_replaces_the_kept_one():
    client = RefusingClient(refused={1})
    reader = member(client)
    reader._store({1: 20})
    reader._store({1: 25})
    assert reader._unstored == {1: 25}
    client.refused = set()
    reader._store({})
    assert client.stored == {1: 25}


def test_a_partition_taken_away_forgets_its_kept_position():
    client = RefusingClient(refused={1})
    reader = member(client)
    reader._store({1: 20})
    reader._give_up([TopicPartition("t", 1)])
    client.refused = set()
    reader._store({0: 5})
    assert client.stored == {0: 5}  # never the revoked partition's old position


def test_other_errors_still_raise():
    reader = member(RefusingClient(refused={0}, code=KafkaError._INVALID_ARG))
    with pytest.raises(KafkaException):
        reader._store({0: 1})


def test_a_lasting_refusal_warns_once_not_at_every_step(caplog):
    reader = member(RefusingClient(refused={1}))
    with caplog.at_level(logging.DEBUG, "interchange.adapters.kafka"):
        for _ in range(5):
            reader._store({1: 20})
    levels = [r.levelno for r in caplog.records if "not stored yet" in r.getMessage()]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 4
