"""Apache Kafka through confluent-kafka (librdkafka).

Features
    today: ``probe`` (a metadata request, for ``interchange health``); the event transport
    (publish, subscribe, replay, seek) is the work of issue 5.
Connection string
    ``kafka://host:9092[,host2:9092]``.
Options
    none yet.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from adapters.errors import BackendUnavailable

try:
    from confluent_kafka.admin import AdminClient
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the kafka:// backend needs confluent-kafka: pip install 'interchange[kafka]'"
    ) from missing


def bootstrap_servers(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def probe(url: str, timeout: float = 5.0) -> str:
    """Ask the cluster for its metadata; return how many brokers answered."""
    servers = bootstrap_servers(url)
    admin = AdminClient(
        {
            "bootstrap.servers": servers,
            "socket.connection.setup.timeout.ms": int(timeout * 1000),
            # librdkafka logs every failed connect attempt; the error below says it once
            "log_level": 0,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception as error:  # KafkaException and friends: the cluster did not answer
        raise BackendUnavailable(f"Kafka at {servers}: {error}") from error
    brokers = len(metadata.brokers)
    return f"Kafka cluster {metadata.cluster_id}, {brokers} broker{'s' if brokers != 1 else ''}"
