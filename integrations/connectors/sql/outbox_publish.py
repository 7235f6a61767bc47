"""Publishing a claimed batch through the Bus, and what the relay writes back: rows sent,
attempts of refused rows, dead letters; and the purge of rows sent long ago."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text, update

from interchange.adapters import BackendUnavailable, TransportError
from interchange.adapters.errors import ConfigurationError
from interchange.bus import Bus
from interchange.connectors.sql.outbox_claim import Batch, Ready, Row, array
from interchange.contracts import Command, Event

log = logging.getLogger("interchange.connectors.outbox")


class BatchPublisher:
    """Publishes batches of one outbox through ``bus``; parks rows in its dead-letter table."""

    def __init__(
        self, bus: Bus, outbox: Table, dead: Table, *, postgres: bool, max_attempts: int, name: str
    ) -> None:
        self.bus, self.outbox, self.dead = bus, outbox, dead
        self.postgres, self.max_attempts, self.name = postgres, max_attempts, name

    def id_of(self, row: Row) -> str:
        return row.message_id or f"{self.outbox.name}-{row.id}"

    def publish_batch(self, batch: Batch) -> tuple[int, BackendUnavailable | None]:
        """Publish in runs of one contract, noting each run sent once the broker confirmed it.
        A refused run is sent again one row at a time to find the refused row, whose aggregate
        then waits for the next round. Every backend down: stop, keep what was sent, and
        return the error with the count of rows out of the outbox."""
        connection, ready, held = batch.connection, batch.ready, batch.held
        done, singles = batch.done, 0
        while ready:
            if held and not (ready := [item for item in ready if item.aggregate not in held]):
                break
            size = 1 if singles or ready[0].headers else _run_length(ready)
            run, ready = ready[:size], ready[size:]
            singles = max(0, singles - 1)
            try:
                self.send(run)
                batch.sent += [item.row.id for item in run]
            except BackendUnavailable as error:
                return done, error
            except ConfigurationError:  # every row would get the same answer: park none
                raise
            except Exception as error:  # PublishRejected, or what no mapping foresaw
                if not isinstance(error, TransportError):
                    log.exception("%s: publishing raised an unmapped error", self.name)
                if size > 1:
                    ready, singles = run + ready, size
                elif self._refused(connection, run[0], error, held):
                    done += 1  # parked: out of the outbox, and out of its aggregate's way
                continue
            done += size
        return done, None

    def send(self, run: list[Ready]) -> None:
        messages = [item.message for item in run]
        ids = [item.message_id for item in run]
        first, headers = run[0].row, run[0].headers
        if isinstance(messages[0], Event):
            keys: list[str | None] = [item.row.aggregate_id for item in run]
            if headers:
                self.bus.publish(messages[0], id=ids[0], key=keys[0], headers=headers)
            else:
                self.bus.publish_many(messages, ids=ids, keys=keys)  # type: ignore[arg-type]
        elif isinstance(messages[0], Command):
            if headers:
                self.bus.send(messages[0], id=ids[0], headers=headers)
            else:
                self.bus.send_many(messages, ids=ids)  # type: ignore[arg-type]
        else:
            raise ValueError(f"{first.contract!r} is neither a command nor an event")

    def _refused(
        self,
        connection: Connection,
        item: Ready,
        error: Exception,
        held: set[tuple[str, str]],
    ) -> bool:
        """The broker refused this row: count the attempt, and park it once they are used up
        (True). Until then its aggregate's later rows wait for it."""
        reason = f"{type(error).__name__}: {error}"
        attempts = item.row.attempts + 1
        # counted on the parked row too, so that its attempts agree with the dead letter's
        # "refused N times"
        connection.execute(
            update(self.outbox)
            .where(self.outbox.c.id == item.row.id)
            .values(attempts=attempts, last_error=reason)
        )
        if attempts >= self.max_attempts:
            self.dead_letter(connection, item.row, f"refused {attempts} times; last: {reason}")
            return True
        held.add(item.aggregate)
        return False

    def mark_sent(self, connection: Connection, ids: list[int]) -> None:
        if self.postgres:  # one array parameter instead of a placeholder per id
            marked = (
                f"UPDATE {self.outbox.name} SET sent_at = now() "
                "WHERE id = ANY(CAST(:ids AS bigint[]))"
            )
            connection.execute(text(marked), {"ids": array(ids)})
            return
        connection.execute(
            update(self.outbox).where(self.outbox.c.id.in_(ids)).values(sent_at=func.now())
        )

    def dead_letter(self, connection: Connection, row: Row, reason: str) -> None:
        log.error("outbox row %s dead-lettered: %s", row.id, reason)
        connection.execute(
            insert(self.dead).values(
                outbox_id=row.id,
                message_id=self.id_of(row),
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                contract=row.contract,
                version=row.version,
                payload=row.payload,
                headers=row.headers,
                reason=reason,
            )
        )
        self.mark_sent(connection, [row.id])


def _run_length(ready: list[Ready]) -> int:
    """How many rows from the first share its contract and carry no headers of their own."""
    kind = type(ready[0].message)
    for n, item in enumerate(ready):
        if type(item.message) is not kind or item.headers:
            return n
    return len(ready)


def purge_sent(
    engine: Engine, outbox: Table, older_than: timedelta, *, batch: int = 1000, most: int = 100
) -> int:
    """Delete rows sent longer ago than ``older_than``, ``batch`` at a time, each batch a
    transaction of its own (locks and WAL stay small; writers and relays are not held up), at
    most ``most`` batches a call. Returns how many rows were deleted.

    A batch looks at the ``batch`` lowest ids only and deletes those of them that are due:
    rows are sent roughly in id order, so the due rows are at the head, and a batch never
    scans the rows kept. It stops at a head with nothing due (an unsent row there, taken out
    of the way soon by sending or parking it, holds the purge back until then). The row with
    the highest id is kept. Dead letters are kept: they wait for an operator."""
    c = outbox.c
    if engine.dialect.name == "postgresql":
        cutoff: Any = func.now() - older_than  # the database's clock, like sent_at's
    else:  # SQLite keeps CURRENT_TIMESTAMP as UTC text
        cutoff = (datetime.now(UTC) - older_than).replace(tzinfo=None)
    head = select(c.id, c.sent_at).order_by(c.id).limit(batch).subquery()
    # never the newest row: SQLite gives a new row the highest id + 1, and a purged id used
    # again would make "<table>-<id>" the message id of an earlier message, deduped away
    newest = select(func.max(c.id)).scalar_subquery()
    picked = select(head.c.id).where(head.c.sent_at < cutoff, head.c.id < newest)
    due = delete(outbox).where(c.id.in_(picked))
    deleted = 0
    for _ in range(most):
        with engine.begin() as connection:
            count = connection.execute(due).rowcount
        deleted += count
        if count == 0:
            break
    return deleted
