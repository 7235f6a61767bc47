"""The options a kafka:// URL's query may carry. Names with a dot go to librdkafka untouched."""

from __future__ import annotations

from typing import Any

from pydantic import PositiveFloat, PositiveInt

from interchange.adapters.kafka.logs import LOGGER
from interchange.adapters.kafka.wire import servers_of
from interchange.adapters.urls import Options, split_options


class KafkaOptions(Options):
    partitions: PositiveInt = 3
    replication_factor: PositiveInt | None = None
    """Default: min(3, brokers in the cluster)."""
    retention_ms: int | None = None
    publish_timeout: PositiveFloat = 30.0
    queued_kbytes: PositiveInt = 8192
    """How much a group member prefetches (librdkafka's queued.max.messages.kbytes)."""


CONSUMER_ONLY = frozenset(
    {
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.enable",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "fetch.wait.max.ms",
        "fetch.queue.backoff.ms",
        "fetch.message.max.bytes",
        "max.partition.fetch.bytes",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.error.backoff.ms",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "consume.callback.max.messages",
    }
)
"""librdkafka's consumer-only properties ("C" in its CONFIGURATION.md, v2.x): a producer or
admin client given one logs a CONFWARN and ignores it."""

PRODUCER_ONLY = frozenset(
    {
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
        "enable.gapless.guarantee",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.ms",
        "linger.ms",
        "message.send.max.retries",
        "retries",
        "queue.buffering.backpressure.threshold",
        "compression.codec",
        "compression.type",
        "compression.level",
        "batch.num.messages",
        "batch.size",
        "delivery.report.only.error",
        "sticky.partitioning.linger.ms",
        "request.required.acks",
        "acks",
        "request.timeout.ms",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "queuing.strategy",
        "produce.offset.report",
        "partitioner",
    }
)
"""librdkafka's producer-only properties ("P"): a consumer given one logs a CONFWARN."""


def for_producer(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the consumer-only properties (for producers and admin clients)."""
    return {name: value for name, value in config.items() if name not in CONSUMER_ONLY}


def for_consumer(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the producer-only properties."""
    return {name: value for name, value in config.items() if name not in PRODUCER_ONLY}


def client_config(url: str) -> tuple[dict[str, Any], KafkaOptions]:
    """(librdkafka settings, our options) from a kafka:// URL."""
    _, options, driver = split_options(url, KafkaOptions, passthrough=lambda name: "." in name)
    # librdkafka's log lines go to Python logging, rate-limited, instead of raw to stderr
    return {"bootstrap.servers": servers_of(url), "logger": LOGGER, **driver}, options
