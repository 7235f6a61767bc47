"""Backends by URL scheme, imported only when used (a missing driver costs nothing until then).

An unknown scheme is an UnknownBackend naming the known ones, with a "did you mean".
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, cast
from urllib.parse import urlsplit

from interchange.adapters.errors import UnknownBackend
from interchange.adapters.protocols import CommandTransport, EventTransport

COMMAND_BACKENDS: dict[str, str] = {
    "memory": "interchange.adapters.memory:MemoryCommandTransport",
    "amqp": "interchange.adapters.rabbitmq:RabbitMQCommandTransport",
    "amqps": "interchange.adapters.rabbitmq:RabbitMQCommandTransport",
    "redis": "interchange.adapters.redis:RedisCommandTransport",
    "rediss": "interchange.adapters.redis:RedisCommandTransport",
}
EVENT_BACKENDS: dict[str, str] = {
    "memory": "interchange.adapters.memory:MemoryEventTransport",
    "kafka": "interchange.adapters.kafka:KafkaEventTransport",
    "redis": "interchange.adapters.redis:RedisEventTransport",
    "rediss": "interchange.adapters.redis:RedisEventTransport",
}

SPOOLS: dict[str, str] = {
    "redis": "interchange.adapters.redis:RedisSpool",
    "rediss": "interchange.adapters.redis:RedisSpool",
}
PROBES: dict[str, str] = {
    "memory": "interchange.adapters.backends:_probe_memory",
    "amqp": "interchange.adapters.rabbitmq:probe",
    "amqps": "interchange.adapters.rabbitmq:probe",
    "kafka": "interchange.adapters.kafka:probe",
    "redis": "interchange.adapters.redis:probe",
    "rediss": "interchange.adapters.redis:probe",
}


def _load(url: str, table: dict[str, str], side: str) -> Any:
    scheme = urlsplit(url).scheme
    if scheme not in table:
        known = sorted(table)
        guess = difflib.get_close_matches(scheme, known, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise UnknownBackend(
            f"no {side} for scheme for scheme {scheme!r} in {url.split('@')[-1]!r}{hint} "
            f"known schemes: {', '.join(known)}"
        )
    module, _, name = table[scheme].partition(":")
    return getattr(importlib.import_module(module), name)


def open_commands(url: str, **options: Any) -> CommandTransport:
    """Open the command transport that serves ``url``."""
    return cast(CommandTransport, _load(url, COMMAND_BACKENDS, "command backend")(url, **options))


def open_events(url: str, **options: Any) -> EventTransport:
    """Open the event transport that serves ``url``."""
    return cast(EventTransport, _load(url, EVENT_BACKENDS, "event backend")(url, **options))


def probe(url: str, timeout: float = 5.0) -> str:
    """Check for real that the backend behind ``url`` answers; return what it said about
    itself. Raises BackendUnavailable when it does not answer within ``timeout``."""
    check = _load(url, PROBES, "health probe")
    return cast(str, check(url, timeout))


def _probe_memory(url: str, timeout: float) -> str:
    return "in-process broker"


def open_spool(url: str, **options: Any) -> Any:
    """The failover spool that ``url`` names (a ``redis://`` URL)."""
    return _load(url, SPOOLS, "fallback spool")(url, **options)
