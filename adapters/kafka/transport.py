"""The Kafka event transport: the protocol verbs (see the package's datasheet)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from interchange.adapters.kafka import CAPABILITIES, replay, sweep
from interchange.adapters.kafka.consumer import GroupMember
from interchange.adapters.kafka.errors import mapped_errors
from interchange.adapters.kafka.options import client_config, for_consumer, for_producer
from interchange.adapters.kafka.publisher import Publisher
from interchange.adapters.kafka.topology import Topics
from interchange.adapters.lifecycle import Consumers
from interchange.adapters.message import Delivery, DeliveryHandler, TransportMessage
from interchange.adapters.protocols import Start, Verdict


def probe(url: str, timeout: float = 5.0) -> str:
    """Ask the cluster for its metadata; return how many brokers answered."""
    config, _ = client_config(url)
    admin = AdminClient(
        {
            **for_producer(config),
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            "log_level": 0,
        }
    )
    with mapped_errors(config["bootstrap.servers"], "read the cluster's metadata"):
        metadata = admin.list_topics(timeout=timeout)
    brokers = len(metadata.brokers)
    return f"Kafka cluster {metadata.cluster_id}, {brokers} broker{'s' if brokers != 1 else ''}"


class KafkaEventTransport:
    """Events on Kafka: keyed topics, consumer groups, replay in time order, seek."""

    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.config, self.options = client_config(url)
        self.servers = str(self.config["bootstrap.servers"])
        self.timeout = self.options.publish_timeout
        self.consumer_config = {
            # librdkafka prefetches up to this many records per partition (default 100,000):
            # facing a backlog of 100-byte records, a member's RSS rose to 164 MB; at 10,000 it
            # peaks at 103 MB at the same rate (bench/memory.py). A URL may set it otherwise.
            "queued.min.messages": 10_000,
            # a URL's options go to the clients they concern: another kind's is a CONFWARN
            **for_consumer(self.config),
            "queued.max.messages.kbytes": self.options.queued_kbytes,
            # librdkafka waits this long to fetch again once the prefetch bound was reached
            # (default 1,000 ms): with the bound at 8 MB, 1 KB events starved at ~19k/s where
            # 10 ms gives ~350k/s (measured, bench/README.md)
            "fetch.queue.backoff.ms": 10,
        }
        self.publisher = Publisher(for_producer(self.config), self.options)
        self.topics = Topics(for_producer(self.config), self.options)
        self.consumers = Consumers()

    # -- publishing -----------------------------------------------------------------------

    @property
    def max_message_bytes(self) -> int:
        """librdkafka's ``message.max.bytes`` (a URL may set it): produce() refuses a larger
        record before sending it, so a failover wrapper need not spool one."""
        return int(self.config.get("message.max.bytes", 1_000_000))

    def fail_fast(self, within: float) -> None:
        """Publishing gives up half a second after librdkafka reports every broker down, and
        after ``within`` without acknowledgements, instead of after ``publish_timeout``."""
        self.publisher.fail_fast(within)
        self.topics.fail_fast()  # a topic not used yet: its metadata request too

    def publish(self, topic: str, message: TransportMessage) -> None:
        self.publish_many(topic, [message])

    def publish_many(self, topic: str, messages: list[TransportMessage]) -> None:
        self.consumers.check_open()
        # one deadline for the whole call: the topic's metadata and creation (a topic this
        # process has not used yet), producing and the delivery reports all share it
        deadline = time.monotonic() + self.publisher.budget()
        self.topics.ensure(topic, deadline)
        self.publisher.publish(topic, messages, deadline)

    # -- consuming ------------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        group: str,
        handler: DeliveryHandler,
        *,
        start: Start = "earliest",
        workers: int = 1,
    ) -> GroupMember:
        self.consumers.check_open()
        self.topics.ensure(topic)
        member = GroupMember(
            self.consumer_config, topic, group, handler, start, self.publish, workers
        )
        return self.consumers.add(member)

    # -- reading the log again ------------------------------------------------------------

    def replay(
        self, topic: str, *, since: Start = "earliest", until: datetime | None = None
    ) -> Iterator[Delivery]:
        self.consumers.check_open()
        yield from replay.replay(self.consumer_config, topic, since, until, self.timeout)

    def seek(self, topic: str, group: str, to: Start) -> None:
        """Set the group's committed offsets. Kafka allows it only while the group has no
        running member: stop its consumers first."""
        self.consumers.check_open()
        consumer = replay.reader(self.consumer_config)
        try:
            ranges = replay.positions(consumer, topic, to, self.timeout, self.servers)
        finally:
            consumer.close()
        self.topics.move_group(
            group, topic, [TopicPartition(topic, p, first) for p, (first, _) in ranges.items()]
        )

    def sweep(self, channel: str, decide: Callable[[TransportMessage], Verdict]) -> int:
        self.consumers.check_open()
        return sweep.sweep(self.consumer_config, channel, decide, self.timeout)

    def backlog(self, channel: str, group: str | None) -> dict[str, int]:
        return self.topics.lag(channel, group) if group else {}

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self.consumers.closed:
            return
        self.consumers.close()
        self.publisher.close()
