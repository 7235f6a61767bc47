"""The SQL sink: a command or event handler that upserts each message into a legacy table, from
configuration alone (table, key columns, column mapping), with its effect applied exactly once.

Exactly once across redeliveries: the message id is inserted into ``interchange_processed``
(primary key: the sink's name and the id) in the same transaction as the upsert. A redelivered
message finds its id there (``ON CONFLICT DO NOTHING`` inserts nothing) and changes nothing; a
process killed between the effect and the commit leaves neither, and the broker delivers it
again. A duplicate never aborts the transaction.

Versions: with ``version_column`` set, an upsert only overwrites a row whose version is older,
so a late, older message never undoes a newer one (it still counts as processed).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, func
from sqlalchemy.dialects import postgresql, sqlite

from interchange.bus import Bus
from interchange.config import SqlSinkConnector
from interchange.connectors.sql.tables import engine_for
from interchange.context import HandlerContext
from interchange.contracts import Command, Event
from interchange.dispatch import Reject

log = logging.getLogger("interchange.connectors.sql_sink")

PROCESSED = "interchange_processed"


def processed_table(metadata: MetaData | None = None) -> Table:
    """Message ids each sink applied: the unique constraint that makes an effect happen once."""
    return Table(
        PROCESSED,
        metadata or MetaData(),
        Column("consumer", String(255), primary_key=True),
        Column("message_id", String(255), primary_key=True),
        Column("processed_at", DateTime(timezone=True), server_default=func.now()),
    )


class SqlSink:
    """Applies each message of one contract to a legacy table; ``attach`` registers it."""

    def __init__(self, config: SqlSinkConnector, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or engine_for(config.url)
        dialect = self.engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"the SQL sink speaks PostgreSQL and SQLite, not {dialect}")
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        metadata = MetaData()
        self.processed = processed_table(metadata)
        metadata.create_all(self.engine, tables=[self.processed])
        self.table = Table(config.table, MetaData(), autoload_with=self.engine)
        unknown = [c for c in [*config.columns, *config.keys] if c not in self.table.c]
        if unknown:
            raise ValueError(f"sink {config.name!r}: {config.table} has no column {unknown}")
        if config.version_column and config.version_column not in config.columns:
            raise ValueError(
                f"sink {config.name!r}: version_column {config.version_column!r} must be mapped"
            )

    def attach(self, bus: Bus) -> None:
        contract = bus.contracts.latest(self.config.contract)
        if contract is None:
            raise ValueError(f"sink {self.config.name!r} names unknown {self.config.contract!r}")
        if issubclass(contract, Event):
            group = self.config.group or f"sql.{self.config.name}"
            bus.subscribes(contract, group=group)(self.apply)
        elif issubclass(contract, Command):
            bus.handles(contract, group=self.config.group)(self.apply)
        else:
            raise ValueError(f"{self.config.contract!r} is neither a command nor an event")

    def row_of(self, message: Any) -> dict[str, Any]:
        """The legacy row: each mapped column from its contract field (dots reach into
        nested models)."""
        row = {}
        data = message.model_dump(mode="json")
        for column, path in self.config.columns.items():
            value: Any = data
            for part in path.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise Reject(f"sink {self.config.name!r}: the message has no field {path!r}")
                value = value[part]
            row[column] = value
        return row

    def apply(self, message: Any, ctx: HandlerContext) -> None:
        """Upsert the message's row and record its id, in one transaction; a duplicate id
        changes nothing."""
        row = self.row_of(message)
        with self.engine.begin() as connection:
            # RETURNING, not rowcount: drivers report -1 for an INSERT that skipped its row
            recorded = connection.execute(
                self._insert(self.processed)
                .values(consumer=self.config.name, message_id=ctx.envelope.id)
                .on_conflict_do_nothing()
                .returning(self.processed.c.message_id)
            ).first()
            if recorded is None:
                log.info("sink %s: %s applied before; skipped", self.config.name, ctx.envelope.id)
                return
            upsert = self._insert(self.table).values(**row)
            changed = {c: upsert.excluded[c] for c in row if c not in self.config.keys}
            version = self.config.version_column
            connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=self.config.keys,
                    set_=changed,
                    where=(self.table.c[version] < upsert.excluded[version]) if version else None,
                )
                if changed
                else upsert.on_conflict_do_nothing()
            )
