"""How far a table poller may read on PostgreSQL without passing a row that a transaction still
running can commit later.

A row becomes visible when its transaction commits, not when its id is drawn or its time is
taken, so "the rows after the mark" today can gain a row below the mark tomorrow: one writer
draws id 4, another draws 5 and commits first; a transaction that began at 10:00 and inserts
with ``DEFAULT now()`` commits its 10:00 row after a 10:01 row was read. The snapshot's
``xmin`` covers only transactions that already hold an xid; a transaction that drew an id
(``nextval`` takes one only when it logs, once in 32 values) or took ``now()`` and has not
written yet holds none; and it counts every database's transactions. Every running
transaction does show in ``pg_stat_activity`` with ``xact_start`` (which *is* its ``now()``), so
the horizon is read from there, once per round, before the rows are read:

- ``timestamp+incrementing``: rows strictly older than the oldest ``xact_start`` still running
  in this database (and older than the moment the activity was read), so a late commit can only
  bring times at or after the horizon. Needs each row's time to be taken inside its writing
  transaction, no earlier than its start (``DEFAULT now()``, ``clock_timestamp()``).
- ``incrementing``: each round records an observation (the server's clock, the highest
  committed id it sees). Ids are drawn in increasing order (a sequence with ``CACHE 1``, the
  default) inside the transaction that writes the row, so every id up to an observation's was
  drawn by a transaction that started before that observation. Once no transaction that started
  before the observation is still running, every such id is committed (and visible to the
  next statement: a backend leaves ``pg_stat_activity`` after it left the proc array) or never
  will be: the rows up to that id may be passed.

What holds the horizon back: any transaction of this database (other than autovacuum's), even
one that never touches the table, until it ends, as it holds back vacuum; a prepared
transaction (``pg_prepared_xacts``) until it is committed or rolled back. Sessions of other
databases never do. The poller's role must see the other sessions' ``xact_start``: a superuser,
a member of ``pg_read_all_stats``, or the role every writer uses; a session it cannot see, or
one with ``track_activities`` off, makes the round fail with ``UnseenTransactions`` (nothing
read, nothing passed) instead of guessing. Left open, in timestamp mode only: a transaction's
``now()`` is its first statement's arrival time, fixed a few microseconds before the backend
lists the statement in ``pg_stat_activity``; one that arrived before the activity was read but
was not listed yet is not seen. (Ids have no such gap: they are drawn after the listing.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, func, select, text

# defined with every other error in interchange.errors (importable without the sql extra)
from interchange.errors import UnseenTransactions

log = logging.getLogger("interchange.connectors.poller")

_ACTIVITY = text(
    """
    SELECT
      count(*) FILTER (
        WHERE a.query = '<insufficient privilege>' AND a.usesysid IS NOT NULL) AS unseen,
      count(*) FILTER (WHERE a.state = 'disabled') AS untracked,
      array_agg(DISTINCT coalesce(a.xact_start, a.query_start)) FILTER (
        WHERE (a.xact_start IS NOT NULL OR a.state NOT IN ('idle', 'disabled'))
          AND a.backend_type IS DISTINCT FROM 'autovacuum worker') AS starts,
      (SELECT count(*) FROM pg_prepared_xacts p WHERE p.database = current_database())
        AS prepared
    FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
    """
)
"""Every other session of this database: how many we cannot see, and when each running
transaction began (``query_start`` for a statement whose transaction is being set up)."""


def require_exact_horizon(
    engine: Engine, name: str, table: str, column: str, incrementing: bool
) -> None:
    """Refuse, at start, a database where the horizon cannot be exact: a standby (its
    ``pg_stat_activity`` lists none of the primary's writers), or an incrementing id whose
    sequence hands out values in blocks per session (``CACHE`` above 1: a session can commit a
    lower id long after a higher one was passed)."""
    with engine.connect() as connection:
        standby = connection.execute(text("SELECT pg_is_in_recovery()")).scalar()
        cache = connection.execute(
            text(
                "SELECT s.cache_size FROM pg_sequences s WHERE format('%I.%I', s.schemaname,"
                " s.sequencename)::regclass = pg_get_serial_sequence(:t, :c)::regclass"
            ),
            {"t": table, "c": column},
        ).scalar()
    if standby:
        raise ValueError(
            f"poller {name!r}: the database is a standby, which does not see the primary's "
            "running transactions: point the poller at the primary"
        )
    if incrementing and cache is not None and cache > 1:
        raise ValueError(
            f"poller {name!r}: the sequence of {table}.{column} has CACHE {cache}: sessions draw "
            "ids in blocks, so ids do not follow the order they were drawn in and rows would be "
            "passed over; ALTER SEQUENCE ... CACHE 1 (the default)"
        )


@dataclass(frozen=True)
class _Observation:
    at: datetime  # the server's clock, after the snapshot that saw ``top``
    top: Any  # the highest committed id then


class Horizon:
    """The limit of one poller's next read; keeps its observations between rounds."""

    def __init__(self, name: str, ident: Column[Any]) -> None:
        self.name, self.ident = name, ident
        self._observations: list[_Observation] = []
        self._settled: Any = None  # the highest id every transaction drawing below it ended
        self._told_prepared = False

    def time_limit(self, connection: Connection) -> datetime | None:
        """Rows strictly older than this may be read; None: none may (timestamp mode)."""
        # the clock first: a transaction not listed yet when the activity is read starts later
        now: datetime = connection.execute(select(func.clock_timestamp())).scalar_one()
        starts, prepared = self._running(connection)
        return None if prepared else min([now, *starts])

    def id_limit(self, connection: Connection) -> Any:
        """Rows up to this id may be read; None: none yet (incrementing mode)."""
        # one statement: its snapshot saw ``top`` before the clock was read; and the activity
        # after both, so whatever began before the clock and still runs is listed
        seen = connection.execute(
            select(func.clock_timestamp(), select(func.max(self.ident)).scalar_subquery())
        ).one()
        starts, prepared = self._running(connection)
        self._observations.append(_Observation(seen[0], seen[1]))
        if not prepared:
            oldest = starts[0] if starts else None
            settled = [o.top for o in self._observations if oldest is None or o.at < oldest]
            tops = [top for top in [self._settled, *settled] if top is not None]
            self._settled = max(tops) if tops else None
        self._forget(starts)
        return self._settled

    def _running(self, connection: Connection) -> tuple[list[datetime], bool]:
        """The start of every transaction running in this database, oldest first, and whether
        a prepared transaction is pending (its start is not known: nothing may be passed)."""
        activity = connection.execute(_ACTIVITY).one()
        if activity.unseen or activity.untracked:
            raise UnseenTransactions(
                f"poller {self.name}: {activity.unseen + activity.untracked} session(s) of this "
                "database are hidden from pg_stat_activity (another role's: grant "
                "pg_read_all_stats to the poller's role; or track_activities is off): their "
                "transactions could commit rows the poller would pass, so it reads nothing"
            )
        if activity.prepared and not self._told_prepared:
            log.warning(
                "poller %s: %d prepared transaction(s) pending in this database: nothing new "
                "is read until they are committed or rolled back",
                self.name,
                activity.prepared,
            )
        self._told_prepared = bool(activity.prepared)
        return list(activity.starts or []), bool(activity.prepared)

    def _forget(self, starts: list[datetime]) -> None:
        """Keep only the observations that may still raise the limit: for each running start,
        the latest taken before it, and the latest of all (for when everything running ends)."""
        keep = {id(self._observations[-1])}
        for start in starts:
            before = [o for o in self._observations if o.at < start]
            if before:
                keep.add(id(before[-1]))
        self._observations = [o for o in self._observations if id(o) in keep]
