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


def client_config(url: str) -> tuple[dict[str, Any], KafkaOptions]:
    """(librdkafka settings, our options) from a kafka:// URL."""
    _, options, driver = split_options(url, KafkaOptions, passthrough=lambda name: "." in name)
    # librdkafka's log lines go to Python logging, rate-limited, instead of raw to stderr
    return {"bootstrap.servers": servers_of(url), "logger": LOGGER, **driver}, options
