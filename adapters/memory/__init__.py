"""In-memory backend: the embedded default for the demo and unit tests.

Features
    commands: point-to-point queues, broadcast exchanges, request/response, dead letters.
    events: an append-only log per topic, consumer groups with committed offsets, replay from the
    start, an offset, a position or a time, seek.
    ``restart()`` of the broker simulates a broker restart: unacknowledged deliveries go back to
    their queue marked redelivered, and acks or commits for them are ignored, exactly as a real
    broker would after the consumers' connections dropped.
    Also a spool and a dedupe store in this process, for tests of failover and dispatch.
Connection string
    ``memory://`` (the process-wide default broker) or ``memory://<name>`` (a separate broker;
    every transport opened on the same name shares it, like services on one real broker).
Options
    none (any query option is refused).
Guarantees
    At least once, in process only: nothing survives the process. A topic is one partition, so
    each group sees the whole topic in publish order, one member at a time (with
    ``workers > 1``, in order per key; the group's offset stops at the first record not done).

Rooms: ``broker`` (the in-process broker), ``transport`` (the protocol verbs), ``consumer``
(the consumer loops), ``wire`` (entries to deliveries), ``errors``, ``options``, ``stores``.
"""

from __future__ import annotations

from interchange.adapters.capabilities import Capabilities

# No driver to import: the broker is ours.

CAPABILITIES: Capabilities = Capabilities(
    system="memory",
    header_prefix="ce_",
    persistent=False,
    ordered_log=True,
    consumer_groups=True,
    offsets=True,
    replay=True,
    request_reply=True,
    survives_restart=True,
)

from interchange.adapters.memory.broker import MemoryBroker  # noqa: E402
from interchange.adapters.memory.stores import MemoryDedupeStore, MemorySpool  # noqa: E402
from interchange.adapters.memory.transport import (  # noqa: E402
    MemoryCommandTransport,
    MemoryEventTransport,
    probe,
)

open_commands = MemoryCommandTransport
open_events = MemoryEventTransport
open_spool = MemorySpool
open_dedupe = MemoryDedupeStore

__all__ = [
    "CAPABILITIES",
    "MemoryBroker",
    "MemoryCommandTransport",
    "MemoryDedupeStore",
    "MemoryEventTransport",
    "MemorySpool",
    "open_commands",
    "open_dedupe",
    "open_events",
    "open_spool",
    "probe",
]
