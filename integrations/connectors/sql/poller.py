"""The table poller: a legacy table nobody can change, read as a stream of events, as Kafka
Connect's JDBC source reads it.

Modes:
- ``incrementing``: a strictly increasing id column; each new row becomes one event.
- ``timestamp+incrementing``: a modification time plus an id; a row becomes an event again each
  time it is updated. Rows are read in (time, id) order after the last (time, id) seen, so rows
  that share a time are neither lost nor read twice across a restart; the time is kept at the
  column's full precision (microseconds), so it never falls behind and re-reads forever.

The high-water mark lives in ``interchange_poller_state`` in the same database and moves only
after the Bus confirmed the batch (a crash between the two publishes the batch again with the
same ids: consumers dedupe). A round is two short transactions, read then mark, and none is
open while the Bus publishes: a poller waiting on a broker holds back neither vacuum nor the
horizon of other pollers. On PostgreSQL the mark never passes a row a transaction still running
can commit (``horizon``). On SQLite one transaction writes at a time, so rows whose id (or time)
the insert itself assigns become visible in that order and nothing needs waiting for; a time
the application took before it got the write lock can still commit behind a later one. A row
that does not make a valid event is written to ``interchange_poller_rejects`` with its reason,
and the poller moves on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from interchange.bus import Bus
from interchange.config import TablePollerConnector
from interchange.connectors.sql.horizon import Horizon, require_exact_horizon
from interchange.connectors.sql.rounds import Rounds
from interchange.connectors.sql.tables import engine_for
from interchange.contracts import Event
from interchange.errors import PollerError, UnseenTransactions

log = logging.getLogger("interchange.connectors.poller")

__all__ = ["PollerError", "TablePoller", "UnseenTransactions", "state_tables"]

_STATE = "interchange_poller_state"
_REJECTS = "interchange_poller_rejects"
_PRIVILEGES = (
    f"SELECT on the polled table; SELECT, INSERT, UPDATE on {_STATE}; INSERT on {_REJECTS} "
    f"and, on PostgreSQL, USAGE on {_REJECTS}_id_seq (CREATE on the schema only while these "
    "two tables do not exist yet)"
)


def _failure(name: str, doing: str, error: SQLAlchemyError) -> PollerError:
    """One line: the driver's message (no SQL, no traceback needed) and, for a privilege the
    role lacks, every privilege the poller needs. Raised ``from`` the driver's error."""
    cause = getattr(error, "orig", None) or error
    message = " ".join(str(cause).split())
    if getattr(cause, "sqlstate", None) == "42501":  # insufficient_privilege
        message += f"; the poller's role needs {_PRIVILEGES}"
    return PollerError(f"poller {name}: {doing} failed: {message}")


def state_tables(metadata: MetaData) -> tuple[Table, Table]:
    state = Table(
        _STATE,
        metadata,
        Column("poller", String(255), primary_key=True),
        Column("last_time_text", String(64)),  # ISO 8601 at the column's full precision
        Column("last_id", String(255)),
    )
    rejects = Table(
        _REJECTS,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("poller", String(255), nullable=False),
        Column("row_id", String(255), nullable=False),
        Column("row", Text, nullable=False),
        Column("reason", Text, nullable=False),
        Column("rejected_at", DateTime(timezone=True), server_default=func.now()),
    )
    return state, rejects


class TablePoller(Rounds):
    """Publishes a legacy table's new (or updated) rows as events; ``start()`` runs it."""

    def __init__(self, bus: Bus, config: TablePollerConnector, engine: Engine | None = None):
        super().__init__()
        self.bus, self.config = bus, config
        self.name, self.batch = f"poller-{config.name}", config.batch
        self.poll_interval = config.poll_interval
        self.engine = engine or engine_for(config.url)
        self.postgres = self.engine.dialect.name == "postgresql"
        contract = bus.contracts.latest(config.contract)
        if contract is None or not issubclass(contract, Event):
            raise ValueError(f"poller {config.name!r}: {config.contract!r} is not a known event")
        self.contract = contract
        metadata = MetaData()
        self.state, self.rejects = state_tables(metadata)
        try:
            metadata.create_all(self.engine)  # creates only what does not exist yet
        except SQLAlchemyError as error:
            raise _failure(config.name, f"creating {_STATE} and {_REJECTS}", error) from error
        self.table = Table(config.table, MetaData(), autoload_with=self.engine)
        needed = [config.id_column, *config.columns, config.key_column or config.id_column]
        if config.mode == "timestamp+incrementing":
            if not config.timestamp_column:
                raise ValueError(f"poller {config.name!r}: this mode needs timestamp_column")
            needed.append(config.timestamp_column)
        unknown = [c for c in needed if c not in self.table.c]
        if unknown:
            raise ValueError(f"poller {config.name!r}: {config.table} has no column {unknown}")
        self.horizon = None
        if self.postgres:
            self.horizon = Horizon(config.name, self.table.c[config.id_column])
            incrementing = config.mode == "incrementing"
            require_exact_horizon(
                self.engine, config.name, config.table, config.id_column, incrementing
            )

    def round(self) -> int:
        return self.poll_once()

    def poll_once(self) -> int:
        """Publish the next batch of rows after the high-water mark, then move it; returns
        how many rows were read (published or rejected). A database failure is a
        ``PollerError`` (the driver's error chained), never a raw driver exception."""
        try:
            rows = self._read()
        except SQLAlchemyError as error:
            raise _failure(self.config.name, "reading", error) from error
        if not rows:
            return 0
        events, ids, keys, refused = [], [], [], []
        for row in rows:
            try:
                event = self.contract.model_validate(self._fields(row))
            except ValidationError as error:
                refused.append((row, f"ValidationError: {error}"))
                continue
            events.append(event)
            ids.append(self._message_id(row))
            keys.append(str(row._mapping[self.config.key_column or self.config.id_column]))
        if events:  # no transaction open meanwhile
            self.bus.publish_many(events, ids=ids, keys=keys)  # confirmed, or it raises
        try:
            with self.engine.begin() as connection:
                for row, reason in refused:
                    self._reject(connection, row, reason)
                self._advance(connection, rows[-1])
        except SQLAlchemyError as error:
            raise _failure(
                self.config.name,
                "moving the mark of a published batch (it is published again, same ids)",
                error,
            ) from error
        return len(rows)

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> Sequence[Row[Any]]:
        """The next batch after the mark that no running transaction can still precede."""
        with self.engine.connect() as connection:
            if self.postgres:
                # each statement its own snapshot: the rows are read after the activity was,
                # so every transaction seen ended is visible (never REPEATABLE READ here)
                connection.execution_options(isolation_level="READ COMMITTED")
            with connection.begin():
                return self._read_in(connection)

    def _read_in(self, connection: Connection) -> Sequence[Row[Any]]:
        last_time, last_id = self._mark(connection)
        query = self._query(last_time, last_id)
        if self.horizon is not None:
            if self.config.mode == "incrementing":
                ceiling = self.horizon.id_limit(connection)
                if ceiling is None:
                    return []
                query = query.where(self.table.c[self.config.id_column] <= ceiling)
            else:
                limit = self.horizon.time_limit(connection)
                if limit is None:
                    return []
                stamp = self.table.c[self.config.timestamp_column]  # type: ignore[index]
                query = query.where(stamp < limit)
        return connection.execute(query).all()

    def _query(self, last_time: Any, last_id: Any) -> Any:
        ident = self.table.c[self.config.id_column]
        query = select(self.table)
        if self.config.mode == "incrementing":
            if last_id is not None:
                query = query.where(ident > last_id)
            query = query.order_by(ident)
        else:
            stamp = self.table.c[self.config.timestamp_column]  # type: ignore[index]
            if last_time is not None:
                query = query.where(
                    or_(stamp > last_time, and_(stamp == last_time, ident > last_id))
                )
            query = query.order_by(stamp, ident)
        return query.limit(self.batch)

    def _fields(self, row: Row[Any]) -> dict[str, Any]:
        values = row._mapping
        return {field: values[column] for column, field in self.config.columns.items()}

    def _message_id(self, row: Row[Any]) -> str:
        values = row._mapping
        ident = values[self.config.id_column]
        if self.config.mode == "incrementing":
            return f"{self.config.name}-{ident}"
        stamp = values[self.config.timestamp_column]  # type: ignore[index]
        return f"{self.config.name}-{ident}-{_text(stamp)}"  # each version of the row once

    # -- the high-water mark -------------------------------------------------------------------

    def _mark(self, connection: Connection) -> tuple[Any, Any]:
        found = connection.execute(
            select(self.state).where(self.state.c.poller == self.config.name)
        ).first()
        if found is None:
            return None, None
        ident_type = self.table.c[self.config.id_column].type.python_type
        last_id = ident_type(found.last_id) if found.last_id is not None else None
        if self.config.mode == "incrementing":
            return None, last_id
        stamp_column = self.table.c[self.config.timestamp_column]  # type: ignore[index]
        stamp: Any = found.last_time_text
        if stamp is not None and stamp_column.type.python_type is datetime:
            stamp = datetime.fromisoformat(stamp)
        return stamp, last_id

    def _advance(self, connection: Connection, last: Row[Any]) -> None:
        values = last._mapping
        stamp = values[self.config.timestamp_column] if self.config.timestamp_column else None
        record = {
            "last_id": str(values[self.config.id_column]),
            "last_time_text": _text(stamp) if stamp is not None else None,
        }
        moved = connection.execute(
            self.state.update().where(self.state.c.poller == self.config.name).values(**record)
        )
        if moved.rowcount == 0:
            connection.execute(insert(self.state).values(poller=self.config.name, **record))

    def _reject(self, connection: Connection, row: Row[Any], reason: str) -> None:
        # NULL stays JSON null, not the string "None"
        values = {k: None if v is None else _text(v) for k, v in row._mapping.items()}
        log.error("poller %s: row %s rejected: %s", self.config.name, values, reason)
        connection.execute(
            insert(self.rejects).values(
                poller=self.config.name,
                row_id=str(row._mapping[self.config.id_column]),
                row=json.dumps(values),
                reason=reason,
            )
        )

    def rejected(self) -> Sequence[Row[Any]]:
        """The rows this poller rejected, with their reasons."""
        with self.engine.connect() as connection:
            query = select(self.rejects).where(self.rejects.c.poller == self.config.name)
            return connection.execute(query.order_by(self.rejects.c.id)).all()


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
