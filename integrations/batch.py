"""Publishing in a loop without waiting for each message: ``with bus.batch() as batch:``.

``batch.send(cmd)`` and ``batch.publish(evt)`` return the message id at once and store nothing
yet. When the block ends (or at ``flush()``, or every ``max_pending`` messages) each contract's
messages go out with ``send_many`` / ``publish_many`` — confirms and delivery reports pipelined,
in call order per contract — and only then are they stored; a message that was not raises
PublishRejected, whose ``failed`` lists the ids of every one not stored. A block that raises
sends nothing it still held: they were never reported stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from interchange.adapters import TransportError
from interchange.contracts import Command, Contract, Event
from interchange.encoding import next_id


@dataclass
class _Pending:
    contracts: list[Contract] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)


class Batch:
    """Messages held until ``flush()``; see the module's docstring."""

    def __init__(self, bus: Any, max_pending: int = 10_000) -> None:
        self.bus, self.max_pending = bus, max_pending
        self._pending: dict[type[Contract], _Pending] = {}  # in first-call order
        self._count = 0

    def send(self, command: Command, *, id: str | None = None) -> str:
        """Hold a command for its queue; its id, not yet stored."""
        if not isinstance(command, Command):
            raise TypeError(f"batch.send takes a Command, not {type(command).__name__}")
        return self._hold(command, id, None)

    def publish(self, event: Event, *, id: str | None = None, key: str | None = None) -> str:
        """Hold an event for its topic (with partition ``key``); its id, not yet stored."""
        if not isinstance(event, Event):
            raise TypeError(f"batch.publish takes an Event, not {type(event).__name__}")
        return self._hold(event, id, key)

    def _hold(self, contract: Contract, id: str | None, key: str | None) -> str:
        pending = self._pending.get(type(contract))
        if pending is None:
            pending = self._pending[type(contract)] = _Pending()
        message_id = id or next_id()
        pending.contracts.append(contract)
        pending.ids.append(message_id)
        pending.keys.append(key)
        self._count += 1
        if self._count >= self.max_pending:
            self.flush()
        return message_id

    def flush(self) -> list[str]:
        """Store everything held; the ids stored, in call order per contract. Raises
        PublishRejected listing every id not stored (those of later contracts included)."""
        held, self._pending, self._count = self._pending, {}, 0
        stored: list[str] = []
        groups = list(held.values())
        for index, pending in enumerate(groups):
            try:
                if isinstance(pending.contracts[0], Event):
                    keys = pending.keys if any(k is not None for k in pending.keys) else None
                    self.bus.publish_many(pending.contracts, ids=pending.ids, keys=keys)
                else:
                    self.bus.send_many(pending.contracts, ids=pending.ids)
            except TransportError as error:
                done = set(stored)
                failed = list(getattr(error, "failed", None) or pending.ids)
                failed += [i for later in groups[index + 1 :] for i in later.ids]
                raise type(error)(
                    f"batch: {len(failed)} message(s) not stored: {error}",
                    failed=[i for i in failed if i not in done],
                ) from error
            stored += pending.ids
        return stored

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.flush()
        else:
            self._pending, self._count = {}, 0

    def __len__(self) -> int:
        """Messages held, not yet stored."""
        return self._count
