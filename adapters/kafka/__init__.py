"""Apache Kafka through confluent-kafka (librdkafka): the home of events.

Features
    ``publish`` / ``publish_many`` to a keyed, append-only log: the idempotent producer
    (``enable.idempotence``, hence ``acks=all`` and ordered retries), and a call returns only
    when every delivery report came back without error (a failure names its record: the id
    is bound to each produce); topics created on first use through
    the AdminClient with the configured partitions, replication and retention (existing topics
    are left alone; ``min.insync.replicas=2`` when replicated three ways);
    ``subscribe``: consumer groups, offsets stored only after the handler, committed on revoke
    and on close; start at ``earliest``, ``latest``, an offset (each partition), a mapping of
    partition to offset, a Position from a delivery, or a time — resolved to an offset and
    committed when a partition the group never committed is assigned (``assignment``);
    ``replay`` without a group and without moving any group's offset, in time order;
    ``seek`` a group (with no running members) to a new position;
    dead letters to ``<topic>.dlq`` with the reason in headers; the partition moves on.
Connection string
    ``kafka://host:9092[,host2:9092][?option=value...]``.
Options (URL query)
    ``partitions`` (3), ``replication_factor`` (min(3, brokers)), ``retention_ms`` (broker's),
    ``publish_timeout`` (30 s: bounds a whole publish, topic metadata and creation included;
    failing fast, the failover's ``within`` bounds it instead),
    ``queued_kbytes`` (8192: a member's prefetch bound). Any option containing a dot is handed
    to librdkafka as is (``security.protocol``, ``sasl.mechanism``, ``sasl.username``,
    ``sasl.password``, ``ssl.ca.location``...) and never logged — a consumer-only property
    (``session.timeout.ms``...) to consumers only, a producer-only one (``linger.ms``...) to
    the producer only; any other is refused.
Guarantees
    At least once. A record that timed out in flight may or may not be in the log: it is
    reported as BackendUnavailable, and a retry may duplicate it (consumers dedupe by id).
    With ``workers > 1`` a member handles records in order per key on that many threads and
    stores, per partition, only the offset before its first record not yet done.

Rooms: ``transport`` (the protocol verbs), ``publisher`` (produce + delivery reports),
``consumer`` (a group member), ``replay`` (reading without a group, seek positions),
``assignment`` (where a group begins), ``topology`` (topics and metadata), ``wire``
(TransportMessage ⇄ record), ``errors`` (driver exceptions → ours), ``options``.
"""

from __future__ import annotations

from interchange.adapters.capabilities import Capabilities

try:
    import confluent_kafka  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"the kafka:// backend needs confluent-kafka ({missing}): "
        "pip install 'interchange-bus[kafka]'"
    ) from missing

CAPABILITIES: Capabilities = Capabilities(
    system="kafka",
    header_prefix="ce_",
    persistent=True,
    ordered_log=True,
    consumer_groups=True,
    offsets=True,
    replay=True,
    request_reply=False,
    survives_restart=True,
    cluster_wide_groups=True,
)

from interchange.adapters.kafka.transport import KafkaEventTransport, probe  # noqa: E402

open_events = KafkaEventTransport

__all__ = ["CAPABILITIES", "KafkaEventTransport", "open_events", "probe"]
