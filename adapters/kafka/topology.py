"""Topics and cluster metadata, through the AdminClient. Every call is bounded by the
transport's ``publish_timeout``, or by the deadline of the publish it serves (with failover,
``fallback_timeout``), so an unreachable cluster fails within it."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from interchange.adapters.errors import BackendUnavailable
from interchange.adapters.kafka.errors import code, mapped_errors
from interchange.adapters.kafka.options import KafkaOptions
from interchange.adapters.kafka.publisher import _GRACE

_FIRST_ASK = 0.25
"""Failing fast: the first metadata request waits this long, each next one twice as long, so
librdkafka's report that every broker is down is seen between them."""


class Topics:
    def __init__(self, config: dict[str, Any], options: KafkaOptions) -> None:
        self.servers = str(config["bootstrap.servers"])
        self.options = options
        self.timeout = options.publish_timeout
        self.failing_fast = False
        """Set (fail_fast): a publish's metadata request gives up _GRACE after librdkafka
        reported every broker down, instead of waiting out the publish's deadline."""
        self._down_since: float | None = None  # librdkafka said every broker is down
        settings: dict[str, Any] = {**config, "error_cb": self._on_error}
        self.admin = AdminClient(settings)
        self._known: set[str] = set()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down_since = time.monotonic()

    def _left(self, deadline: float | None, doing: str) -> float:
        """Seconds left before ``deadline`` (``publish_timeout`` without one); none left is
        BackendUnavailable, so a publish never starts a request it has no time to wait for."""
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise BackendUnavailable(f"Kafka at {self.servers}: no time left to {doing}")
        return left

    def metadata(self, topic: str | None = None, deadline: float | None = None) -> Any:
        doing = "read the cluster's metadata"
        # only a publish (it has a deadline) fails fast; subscribing and lag keep their wait
        failing_fast = self.failing_fast and deadline is not None
        started, ask = time.monotonic(), _FIRST_ASK if failing_fast else None
        while True:
            left = self._left(deadline, doing)
            try:
                with mapped_errors(self.servers, doing):
                    found = self.admin.list_topics(
                        topic, timeout=left if ask is None else min(ask, left)
                    )
                self._down_since = None  # answered: a broker is up
                return found
            except BackendUnavailable:
                self.admin.poll(0)  # serves error_cb: is every broker reported down?
                waited, down = time.monotonic() - started, self._down_since is not None
                if ask is None or ask >= left or (down and waited >= _GRACE):
                    raise
                # every broker down: a reconnect gets its chance until _GRACE, no longer
                ask = _GRACE - waited if down else ask * 2
            finally:
                self.admin.poll(0)  # serves the admin client's queued log lines

    def fail_fast(self) -> None:
        self.failing_fast = True

    def ensure(self, topic: str, deadline: float | None = None) -> None:
        """Create the topic unless it exists; existing topics are left as they are. Each
        request waits until ``deadline`` (time.monotonic()) at most, ``publish_timeout``
        without one."""
        if topic in self._known:
            return
        # asked even when the replication is configured: an unreachable cluster shows here,
        # failing fast, instead of in a creation request that waits out the deadline
        brokers = len(self.metadata(deadline=deadline).brokers)
        replication = self.options.replication_factor or min(3, brokers)
        settings = {"min.insync.replicas": "2"} if replication >= 3 else {}
        if self.options.retention_ms is not None:
            settings["retention.ms"] = str(self.options.retention_ms)
        new = NewTopic(
            topic,
            num_partitions=self.options.partitions,
            replication_factor=replication,
            config=settings,
        )
        doing = f"create topic {topic!r}"
        with mapped_errors(self.servers, doing):
            try:
                left = self._left(deadline, doing)
                created = self.admin.create_topics(
                    [new], operation_timeout=left, request_timeout=left
                )
                created[topic].result(timeout=self._left(deadline, doing))
            except KafkaException as error:
                if code(error) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        self._known.add(topic)

    def move_group(self, group: str, topic: str, offsets: list[Any]) -> None:
        """Set a group's committed offsets (a list of TopicPartition)."""
        request = ConsumerGroupTopicPartitions(group, offsets)
        with mapped_errors(self.servers, f"seek group {group!r} on {topic!r}"):
            self.admin.alter_consumer_group_offsets([request])[group].result(timeout=self.timeout)

    def lag(self, topic: str, group: str) -> dict[str, int]:
        """Per partition: the latest offset minus the group's committed one (all of the
        partition when the group committed nothing there)."""
        described = self.metadata(topic).topics.get(topic)
        if described is None or described.error is not None:
            return {}
        partitions = [TopicPartition(topic, p) for p in sorted(described.partitions)]
        with mapped_errors(self.servers, f"read the offsets of {group!r} on {topic!r}"):
            request = ConsumerGroupTopicPartitions(group, partitions)
            committed = {
                tp.partition: tp.offset
                for tp in self.admin.list_consumer_group_offsets([request])[group]
                .result(timeout=self.timeout)
                .topic_partitions
            }
            ends = self.admin.list_offsets(
                {tp: OffsetSpec.latest() for tp in partitions},  # type: ignore[no-untyped-call]
                request_timeout=self.timeout,
            )
            latest = {tp.partition: f.result(timeout=self.timeout).offset for tp, f in ends.items()}
        return {str(p): max(0, end - max(0, committed.get(p, 0))) for p, end in latest.items()}
