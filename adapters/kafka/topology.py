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


class Topics:
    def __init__(self, config: dict[str, Any], options: KafkaOptions) -> None:
        self.servers = str(config["bootstrap.servers"])
        self.options = options
        self.timeout = options.publish_timeout
        self.admin = AdminClient(config)
        self._known: set[str] = set()

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
        try:
            with mapped_errors(self.servers, doing):
                return self.admin.list_topics(topic, timeout=self._left(deadline, doing))
        finally:
            self.admin.poll(0)  # serves the admin client's queued log lines

    def ensure(self, topic: str, deadline: float | None = None) -> None:
        """Create the topic unless it exists; existing topics are left as they are. Each
        request waits until ``deadline`` (time.monotonic()) at most, ``publish_timeout``
        without one."""
        if topic in self._known:
            return
        replication = self.options.replication_factor or min(
            3, len(self.metadata(deadline=deadline).brokers)
        )
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
