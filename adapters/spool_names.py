"""What the failover spool takes, and under which name: lines named after their primary.

Several Buses may share one fallback Redis while their primaries differ (another Kafka cluster,
another vhost, another environment). A line is ``<side>@<primary>:<verb>:<destination>``,
``<primary>`` a short stable hash of the primary's URL reduced to where it delivers: scheme,
hosts (lower case, default port added, in sorted order) and vhost, database or name.
Credentials and options (timeouts, partitions...) are left out: they do not change the
destination, and a password rotated during an outage must not orphan its spool. The channel
prefix is already part of each destination's name.
"""

from __future__ import annotations

import hashlib
from urllib.parse import unquote, urlsplit

from interchange.adapters.errors import PublishRejected
from interchange.adapters.message import TransportMessage
from interchange.adapters.protocols import LimitsMessageSize

_PORTS = {"kafka": 9092, "amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379}
_EMPTY_PATH = {"amqp": "/", "amqps": "/", "redis": "0", "rediss": "0"}
"""What a URL without a path means: RabbitMQ's default vhost, Redis's database 0."""


def _host(scheme: str, host: str) -> str:
    host = host.strip().lower()
    if scheme in _PORTS and not host.rpartition("]")[2].count(":"):
        host = f"{host}:{_PORTS[scheme]}"
    return host


def primary_identity(url: str) -> str:
    """Twelve hex digits naming the destination ``url`` points at (see the module)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hosts = parts.netloc.rpartition("@")[2]
    where = ",".join(sorted(_host(scheme, h) for h in hosts.split(",") if h.strip()))
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") and path != "/" else path
    canonical = f"{scheme}://{where}/{path or _EMPTY_PATH.get(scheme, '')}"
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def namespace(side: str, identity: str) -> str:
    """The prefix of every line one side of a Bus spools to, and drains from."""
    return f"{side}@{identity}:"


def refuse_oversized(primary: object, line: str, messages: list[TransportMessage]) -> None:
    """Raise PublishRejected, nothing spooled, when a message is larger than a primary that
    knows its limit takes: it would refuse it when drained."""
    if not isinstance(primary, LimitsMessageSize):
        return
    limit = primary.max_message_bytes
    for message in messages:
        # a lower bound of what the primary counts (its framing adds to it): never refuses
        # what the primary would take
        size = len(message.body) + len((message.key or "").encode())
        size += sum(len(k.encode()) + len(v.encode()) for k, v in message.headers.items())
        if size > limit:
            raise PublishRejected(
                f"message {message.id} for {line} has {size} bytes, more than the primary "
                f"takes ({limit}): not spooled",
                failed=[m.id for m in messages],
            )
