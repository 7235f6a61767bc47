"""The ``ctx`` a handler receives: the envelope it is handling, and verbs that carry the
correlation id over and name this message as the cause of what the handler sends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from interchange.contracts import Command, Contract, Envelope, Event


class Sender(Protocol):
    """The publishing verbs a handler may use (a Bus has them)."""

    def send(self, command: Command, **options: Any) -> str: ...

    def broadcast(self, command: Command, **options: Any) -> str: ...

    def publish(self, event: Event, **options: Any) -> str: ...

    def request(
        self, command: Command, *, timeout: float | None = None, **options: Any
    ) -> Contract: ...


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler knows of the message in hand, and how it sends more in its name.

    ``send``, ``broadcast``, ``publish`` and ``request`` carry this message's correlation id
    over and name it as the cause, so a conversation can be followed across services.
    """

    envelope: Envelope
    attempt: int
    """1 on first delivery; 3 means two earlier attempts failed or were lost."""
    group: str | None
    sender: Sender
    dedupe_key: str = ""
    """The key the dedupe store records this message under once the handler returns. For an
    effect that must happen exactly once, record it in the same transaction as the effect
    (e.g. ``RedisDedupeStore.remember_in``): a crash between the two cannot then repeat it."""

    @property
    def message_id(self) -> str:
        return self.envelope.id

    @property
    def correlation_id(self) -> str:
        """The conversation this message belongs to: its own id when it started one."""
        return self.envelope.correlation_id or self.envelope.id

    @property
    def headers(self) -> Mapping[str, str]:
        return self.envelope.headers

    def _lineage(self) -> dict[str, Any]:
        return {"correlation_id": self.correlation_id, "causation_id": self.envelope.id}

    def send(self, command: Command, **options: Any) -> str:
        return self.sender.send(command, **self._lineage(), **options)

    def broadcast(self, command: Command, **options: Any) -> str:
        return self.sender.broadcast(command, **self._lineage(), **options)

    def publish(self, event: Event, **options: Any) -> str:
        return self.sender.publish(event, **self._lineage(), **options)

    def request(self, command: Command, *, timeout: float | None = None) -> Contract:
        return self.sender.request(command, timeout=timeout, **self._lineage())
