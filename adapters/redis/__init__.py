"""Redis through redis-py: a complete backend on Streams, and a shared dedupe store.

Features
    commands: a stream per queue read by one consumer group (competing consumers); broadcast: a
    stream per exchange, ``<exchange>:broadcast`` (never a queue's stream, even of the same
    name), with one group per subscribing queue (created at ``$``, like a binding; no group
    means unroutable: PublishRejected); acknowledged with XACK after the handler; retries stay
    pending and are claimed back after their delay; entries of dead consumers taken over with
    XAUTOCLAIM; dead letters to ``<queue>.dlq``; request/response over a reply list with timeout.
    events: a stream per topic, a consumer group per group, start at ``0``, ``$``, an offset or
    a time; replay with XRANGE; seek with XGROUP SETID; dead letters to ``<topic>.dlq``. One
    member of a group reads at a time, holding the group's lease (``interchange:lease:<topic>|
    <group>``, a key with a TTL its holder renews); a new holder first finishes, oldest first,
    the entries earlier holders left pending, then reads new ones. ``partitions=N``: a topic
    is N streams (``<topic>``, ``<topic>:1``...), a key's by its CRC-32, each with its lease;
    a member holds at most ``ceil(N / live members)`` of them (partitions.py).
    ``probe`` for ``interchange health`` (reports the fsync policy); ``RedisDedupeStore``.
Connection string
    ``redis://[:password@]host:6379/0``, ``rediss://...`` for TLS.
Options (URL query; redis-py's own URL options pass through, anything else is refused)
    ``claim_idle`` (30): seconds an entry stays pending before another consumer takes it over,
    and an event member may finish no entry it has in hand before it gives up the lease;
    ``lease_ttl`` (10): seconds an event group waits for a holder that stopped renewing;
    ``partitions`` (1): streams per event topic; the first process to use a topic records it,
    and one configured with another count is refused (InvalidURL);
    ``maxlen`` and ``retention_ms``: trim event streams to a length or an age — never past an
    entry some group has not yet read or acknowledged (XTRIM would delete it from under them).
Guarantees
    At least once. Durability is the server's: with ``appendfsync everysec`` (compose/native)
    about one second of acknowledged writes can be lost in a crash; ``health`` shows the policy.
    redis-py retries a command after a timeout, so an XADD may land twice: consumers dedupe by id.
    Acknowledged command entries are deleted; event streams are trimmed only when asked.
    With ``workers > 1`` an event member acknowledges each entry when done, in order per key.
    Events: each group handles a partition's entries in publish order, so in order per key,
    with any number of members (those without a lease wait as standbys) — unless a holder
    that lost the lease (Redis unreachable for ``lease_ttl``, or no entry finished for
    ``claim_idle``) was in a handler: that entry is handled again by the next holder (deduped
    by id) and its first run may end after the next holder's later ones. A member checks the
    lease before each entry and handles none once it lost it.

Rooms: ``transport`` (the protocol verbs, trimming), ``consumer`` (group readers; the event
member is ``log_reader``, its group's lease ``lease``, partitions ``partitions``),
``trimming``, ``stores``
(the failover spool and the shared dedupe store), ``wire`` (TransportMessage ⇄ stream entry,
stream positions), ``errors`` (driver exceptions → ours), ``options``.
"""

from __future__ import annotations

from interchange.adapters.capabilities import Capabilities

try:
    import redis  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"the redis:// backend needs redis ({missing}): pip install 'interchange-bus[redis]'"
    ) from missing

CAPABILITIES: Capabilities = Capabilities(
    system="redis",
    header_prefix="ce_",
    persistent=True,
    ordered_log=True,
    consumer_groups=True,
    offsets=False,
    replay=True,
    request_reply=True,
    survives_restart=True,
)

from interchange.adapters.redis.stores import RedisDedupeStore, RedisSpool  # noqa: E402
from interchange.adapters.redis.transport import (  # noqa: E402
    RedisCommandTransport,
    RedisEventTransport,
    probe,
)

open_commands = RedisCommandTransport
open_events = RedisEventTransport
open_spool = RedisSpool
open_dedupe = RedisDedupeStore

__all__ = [
    "CAPABILITIES",
    "RedisCommandTransport",
    "RedisDedupeStore",
    "RedisEventTransport",
    "RedisSpool",
    "open_commands",
    "open_dedupe",
    "open_events",
    "open_spool",
    "probe",
]
