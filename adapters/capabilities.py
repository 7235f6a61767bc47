"""What a backend can do, declared once. The conformance suite reads it to decide what it
asserts of each backend, instead of skipping tests per backend by name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capabilities:
    system: str
    """The broker, as OpenTelemetry's ``messaging.system`` names it (``rabbitmq``, ``kafka``)."""
    header_prefix: str
    """CloudEvents header prefix of the broker's protocol binding (``ce_``, ``cloudEvents_``)."""
    persistent: bool
    """Messages survive the backend's process ending."""
    ordered_log: bool
    """A consumer group reads each partition in publish order and never past an unacked record."""
    consumer_groups: bool
    """Each group reads every event; members of one group share the work."""
    replay: bool
    """The event log can be read again from the start, a position or a time."""
    offsets: bool
    """Records are numbered in each partition: an int start is an offset in every partition.
    Without it, an int start is a TypeError (start from a Position, a time, or an end)."""
    request_reply: bool
    """Commands support request/response."""
    survives_restart: bool
    """Consumers and publishers carry on by themselves after a broker restart."""
    cluster_wide_groups: bool = False
    """Consumer group names are one namespace for the whole cluster (Kafka's group.id), not
    kept inside their topic or stream: the Bus puts its channel prefix on them too."""
