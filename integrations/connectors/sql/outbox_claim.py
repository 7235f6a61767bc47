"""What a relay round works on: the outbox rows it claims (the claim itself, one statement on
PostgreSQL), decoded and ready to publish, in a transaction of their own."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, RootTransaction, Table, literal_column, select

from interchange.contracts import Contract


class Row(NamedTuple):
    """An outbox row as the claim reads it: a plain tuple, since a SQLAlchemy Row's attribute
    access cost more per row than publishing it (measured)."""

    id: int
    message_id: str | None
    aggregate_type: str
    aggregate_id: str
    contract: str
    version: int
    payload: str
    headers: str | None
    attempts: int
    seq: int  # commit_seq on PostgreSQL (the commit order), 0 on SQLite

    @property
    def key(self) -> tuple[int, int]:
        """Where the row stands in the order of publishing."""
        return self.seq, self.id


class Ready(NamedTuple):
    row: Row
    aggregate: tuple[str, str]
    message: Contract
    message_id: str
    headers: dict[str, str] | None  # the row's own headers, parsed


@dataclass(slots=True)
class Batch:
    """One round's rows, claimed and decoded in a transaction of its own."""

    connection: Connection
    transaction: RootTransaction
    claimed: list[int]  # every row locked, published or not
    ready: list[Ready]  # to publish, in order
    held: set[tuple[str, str]]  # aggregates whose rows wait for the next round
    done: int = 0  # rows dead-lettered (out of the outbox)
    sent: list[int] = field(default_factory=list)  # rows published, to mark sent

    def close(self, commit: bool) -> None:
        try:
            if commit:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.connection.close()


class Claim:
    """Claims the next batch of unsent rows of an outbox, locked, in the order they are to be
    published."""

    def __init__(self, outbox: Table, batch: int, postgres: bool) -> None:
        self.outbox, self.batch, self.postgres = outbox, batch, postgres
        self._sql = self._statement()

    def __call__(
        self, connection: Connection, ours: list[int]
    ) -> tuple[list[Row], dict[tuple[str, str], tuple[int, int]]]:
        """The next batch of unsent rows, locked, in order, and per aggregate the first unsent
        row before our last that another relay holds (its key): our rows of that aggregate
        after it must wait."""
        if not self.postgres:  # one writer at a time: id order is commit order
            c = self.outbox.c  # the columns a round uses: no time stamps to parse
            fields: list[ColumnElement[Any]] = [c[name] for name in Row._fields[:-1]]
            fields.append(literal_column("0"))
            query = select(*fields).where(c.sent_at.is_(None)).order_by(c.id).limit(self.batch)
            return [Row._make(row) for row in connection.execute(query)], {}
        # One round trip, on the driver's cursor (SQLAlchemy's result rows cost more per row
        # than the query): the batch size and the ids are ints of ours, written as literals.
        claim = self._sql.format(
            batch=int(self.batch),
            # room for the rows in flight ahead of ours: the batch we are marking, other
            # relays' batches (fewer than a batch is claimed when they fill it)
            window=3 * int(self.batch),
            marking=array(ours),
        )
        rows, elsewhere = [], {}
        with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(claim)
            cursor.nextset()  # past the planner settings
            for row in cursor:
                if row[4] is None:  # another relay's first row of an aggregate
                    elsewhere[row[2], row[3]] = (row[9], row[0])
                else:
                    rows.append(Row._make(row))
        rows.sort(key=lambda row: row.key)  # the union's order is not promised
        return rows, elsewhere

    def _statement(self) -> str:
        """PostgreSQL's claim, ``{batch}``, ``{window}`` and ``{marking}`` to fill in; rows in
        commit order, ``(commit_seq, id)`` (outbox_order).

        First the planner settings: an outbox churns faster than autovacuum analyzes it, and
        on stale statistics the planner sorts every unsent row per batch (26 ms at 20,000
        rows, against 0.5 ms); the partial index of unsent rows, in commit order, is always
        the right plan. Then, in one statement: the first ``window`` unsent rows in commit
        order (``candidates``, unlocked); the batch, locked, from no further than the last of
        them; and, with a NULL contract, per aggregate the first candidate before our last row
        that is neither ours nor one this relay published and is still marking (``marking``,
        locked by the commit in flight): another relay holds it. A snapshot sees a prefix of
        the commit order (a transaction still committing is invisible, and so is every later
        one), so nothing read now can be overtaken by a row that becomes visible later. The
        candidates are a prefix in that order, so every row another relay holds before our
        last is among them; a range scan of the unsent rows below our last instead let the
        planner pick the primary key on statistics taken before the backlog drained, and walk
        every sent row (measured: 30 ms a round at 40,000 sent rows)."""
        columns = ", ".join([*Row._fields[:-1], "commit_seq"])
        others = ", ".join(["id", "NULL", "aggregate_type", "aggregate_id"] + ["NULL"] * 5)
        t = self.outbox.name
        last = "ORDER BY commit_seq DESC, id DESC LIMIT 1"
        return (
            "SELECT set_config('enable_bitmapscan', 'off', true), "
            "set_config('enable_seqscan', 'off', true); "
            "WITH candidates AS MATERIALIZED (SELECT commit_seq, id, aggregate_type, "
            f"aggregate_id FROM {t} WHERE sent_at IS NULL ORDER BY commit_seq, id "
            "LIMIT {window}), "
            f"claimed AS (SELECT {columns} FROM {t} WHERE sent_at IS NULL "
            f"AND (commit_seq, id) <= (SELECT commit_seq, id FROM candidates {last}) "
            "ORDER BY commit_seq, id LIMIT {batch} FOR UPDATE SKIP LOCKED) "
            "SELECT * FROM claimed UNION ALL ("
            f"SELECT DISTINCT ON (aggregate_type, aggregate_id) {others}, commit_seq "
            "FROM candidates "
            f"WHERE (commit_seq, id) < (SELECT commit_seq, id FROM claimed {last}) "
            "AND id NOT IN (SELECT id FROM claimed) "
            "AND id NOT IN (SELECT unnest('{marking}'::bigint[])) "
            "ORDER BY aggregate_type, aggregate_id, commit_seq, id)"
        )


def array(ids: list[int]) -> str:
    """A PostgreSQL array literal of ids: psycopg's list adapter took a tenth of a round."""
    return "{" + ",".join(map(str, ids)) + "}"


def headers_of(row: Row) -> dict[str, str] | None:
    """A row's own headers: a JSON object, or nothing."""
    if not row.headers:
        return None
    headers = json.loads(row.headers)
    if not isinstance(headers, dict):
        raise ValueError(f"headers must be a JSON object, not {row.headers!r}")
    return headers
