"""Backends by URL scheme: one registry, each broker package imported only when used (a missing
driver costs nothing until then).

A scheme names a broker package of ``interchange.adapters`` and the roles it serves. A package
serves a role by defining its opener: ``open_commands``, ``open_events`` (transports),
``open_spool`` (the failover spool), ``open_dedupe`` (a shared dedupe store) and ``probe``. An
unknown scheme, or one that does not serve the role asked for, is an UnknownBackend naming the
schemes that do, with a "did you mean".
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from interchange.adapters.errors import UnknownBackend
from interchange.adapters.protocols import CommandTransport, DedupeStore, EventTransport, Spool
from interchange.adapters.urls import did_you_mean, redact

ROLES = {
    "commands": "command backend",
    "events": "event backend",
    "spool": "fallback spool",
    "dedupe": "dedupe store",
    "probe": "health probe",
}


@dataclass(frozen=True)
class Scheme:
    package: str
    """The broker package under ``interchange.adapters``."""
    serves: frozenset[str]


_ALL = frozenset(ROLES)
SCHEMES: dict[str, Scheme] = {
    "memory": Scheme("memory", _ALL),
    "amqp": Scheme("rabbitmq", frozenset({"commands", "probe"})),
    "amqps": Scheme("rabbitmq", frozenset({"commands", "probe"})),
    "kafka": Scheme("kafka", frozenset({"events", "probe"})),
    "redis": Scheme("redis", _ALL),
    "rediss": Scheme("redis", _ALL),
}


def serving(role: str) -> list[str]:
    """The schemes that serve ``role``, sorted."""
    return sorted(name for name, scheme in SCHEMES.items() if role in scheme.serves)


def _opener(url: str, role: str) -> Any:
    scheme = urlsplit(url).scheme
    known = serving(role)
    if scheme not in known:
        guess = did_you_mean(scheme, known)
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise UnknownBackend(
            f"no {ROLES[role]} for scheme {scheme!r} in {redact(url)!r}{hint}; "
            f"known schemes for a {ROLES[role]}: {', '.join(known)}"
        )
    package = importlib.import_module(f"interchange.adapters.{SCHEMES[scheme].package}")
    return getattr(package, f"open_{role}" if role != "probe" else "probe")


def open_commands(url: str, **options: Any) -> CommandTransport:
    """Open the command transport that serves ``url``."""
    return cast(CommandTransport, _opener(url, "commands")(url, **options))


def open_events(url: str, **options: Any) -> EventTransport:
    """Open the event transport that serves ``url``."""
    return cast(EventTransport, _opener(url, "events")(url, **options))


def open_spool(url: str, *, timeout: float = 5.0) -> Spool:
    """The failover spool that ``url`` names (``redis://``; ``memory://`` for tests)."""
    return cast(Spool, _opener(url, "spool")(url, timeout=timeout))


def open_dedupe(url: str | None, *, ttl: float = 3600.0) -> DedupeStore:
    """The dedupe store a URL names: ``redis://...`` is shared by every process using it;
    None or ``memory://`` keeps ids in this process only."""
    return cast(DedupeStore, _opener(url or "memory://", "dedupe")(url or "memory://", ttl=ttl))


def probe(url: str, timeout: float = 5.0) -> str:
    """Check for real that the backend behind ``url`` answers; return what it said about
    itself. Raises BackendUnavailable when it does not answer within ``timeout``."""
    return cast(str, _opener(url, "probe")(url, timeout))
