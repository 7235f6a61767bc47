"""The transactional outbox: an application writes a message row in the same transaction as its
business change; the relay publishes rows in order and marks them sent only after the broker
confirmed them. The relay's Bus has no fallback (a Bus with one is refused): the table is its
durable store, and a spooled row would be marked sent before a broker had it, overtaken by
its aggregate's later rows, and never counted as refused.

- A row's message id is its ``message_id`` (``add_to_outbox`` fills one) or ``<table>-<id>``:
  a relay that dies between publishing and marking publishes the row again with the same id,
  and consumers dedupe it.
- Order: an aggregate's rows are published in the order their transactions committed, rows
  of one transaction in id order (its id is the partition key). On PostgreSQL a deferred
  trigger stamps each row with its transaction's place in the commit order as it commits
  (outbox_order); the relay reads ``(commit_seq, id)``, and a running transaction holds
  nothing back. On SQLite (one writer at a time) id order is commit order. Several relays
  share the table with ``FOR UPDATE SKIP LOCKED`` and a relay skips an aggregate whose
  earlier row another relay holds. A rolled-back row was never visible.
- A row whose contract is unknown or whose payload does not validate goes to
  ``<table>_dead_letters`` with its reason, in the same transaction that takes it out of the
  outbox; the relay continues. A row the broker refuses (or whose publishing raises an error
  no mapping foresaw) is tried again ``max_attempts`` times, then parked there too: neither
  overtaken by its aggregate's later rows meanwhile, nor blocking them forever. While the
  broker is down (BackendUnavailable) nothing is counted: the rows stay unsent, the relay
  waits and tries again;
  a ConfigurationError is raised, nothing counted. Every transaction the relay opens ends on
  every error path: an open one would hold row locks and the database's xmin horizon.
- Throughput: the running loop (``start()``) on PostgreSQL commits a batch's marks on a
  helper thread while it claims and publishes the next batch; a relay killed in between
  publishes the unmarked batch again, as above.
- Retention: the running loop deletes rows sent more than ``retention_hours`` ago (24 by
  default; ``None`` keeps them) every ``purge_every`` seconds, in batches of ``batch`` rows,
  each a transaction of its own. Dead letters are kept.
- Wake-up: PostgreSQL's LISTEN/NOTIFY (a trigger notifies on insert), with polling every
  ``poll_interval`` as the floor, which also makes up for a notification lost while
  reconnecting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.exc import DBAPIError

from interchange.adapters import BackendUnavailable
from interchange.adapters.errors import ConfigurationError
from interchange.bus import Bus
from interchange.connectors.sql import outbox_order
from interchange.connectors.sql.outbox_claim import Batch, Claim, Ready, Row, headers_of
from interchange.connectors.sql.outbox_publish import BatchPublisher, purge_sent
from interchange.connectors.sql.rounds import Rounds
from interchange.connectors.sql.tables import (
    CHANNEL,
    dead_letter_table,
    engine_for,
    outbox_table,
)
from interchange.contracts import Contract, UnknownContract

log = logging.getLogger("interchange.connectors.outbox")


def add_to_outbox(
    connection: Connection,
    message: Contract,
    *,
    aggregate_type: str,
    aggregate_id: str,
    headers: Mapping[str, str] | None = None,
    table: str = "interchange_outbox",
) -> str:
    """Add ``message`` to the outbox on the caller's connection, inside the caller's
    transaction: it is sent if and only if that transaction commits. Returns its message id."""
    message_id = str(uuid.uuid4())
    connection.execute(
        insert(outbox_table(table)).values(
            message_id=message_id,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            contract=message.contract_name,
            version=message.contract_version,
            payload=message.model_dump_json(by_alias=True),  # as the relay validates it
            headers=json.dumps(dict(headers)) if headers else None,
        )
    )
    return message_id


class OutboxRelay(Rounds):
    """Publishes an outbox table's rows through a Bus; ``start()`` runs it on a thread."""

    def __init__(
        self,
        bus: Bus,
        url: str | Engine,
        *,
        table: str = "interchange_outbox",
        batch: int = 500,
        poll_interval: float = 1.0,
        max_attempts: int = 10,
        retention_hours: float | None = 24.0,
    ) -> None:
        if bus.settings.backends.fallback:
            # the table is the relay's durable store: spooled rows would count as sent before
            # a broker had them, be overtaken by later rows, and never be counted as refused
            raise ConfigurationError(
                "the outbox relay publishes through a Bus without backends.fallback: while a "
                "broker is down its rows stay unsent in the table, in order; give it a Bus "
                "built from the same settings with fallback = None"
            )
        self.bus, self.batch, self.poll_interval = bus, batch, poll_interval
        self.max_attempts = max_attempts
        self.retention = None if retention_hours is None else timedelta(hours=retention_hours)
        self.purge_every = 300.0  # seconds between purges of the running loop
        self._next_purge = 0.0  # time.monotonic() of the next: the first round purges
        self.engine = url if isinstance(url, Engine) else engine_for(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        self.outbox: Table = outbox_table(table)
        self.dead: Table = dead_letter_table(table)
        super().__init__()
        self.name = f"outbox-{table}"
        self.relayed = 0  # rows that left the outbox, committed
        self._listener: Any = None
        self._models: dict[tuple[str, int], type[Contract]] = {}  # each looked up once
        self._ordered = False  # the table's commit order checked (PostgreSQL)
        self._claim = Claim(self.outbox, batch, self.postgres)
        self.publisher = BatchPublisher(
            bus,
            self.outbox,
            self.dead,
            postgres=self.postgres,
            max_attempts=max_attempts,
            name=self.name,
        )
        # the running loop's pipeline (PostgreSQL): the previous batch's marks commit here
        self._committer: ThreadPoolExecutor | None = None
        self._committing: Future[None] | None = None
        self._committing_ids: list[int] = []  # the rows the commit in flight marks sent

    # -- one round -------------------------------------------------------------------------

    def relay_once(self) -> int:
        """Publish one batch of unsent rows and commit their marks; returns how many rows left
        the outbox (sent or dead-lettered). Raises BackendUnavailable, with nothing marked,
        while every backend is down."""
        self._settle()
        batch = self._prepare([])
        moved, unavailable = self._publish_or_roll_back(batch)
        self._commit(batch, moved)
        if unavailable is not None:  # raised after committing what was sent
            raise unavailable
        return moved

    def round(self) -> int:
        """A round of the running loop. On PostgreSQL a batch's marks commit on a helper thread
        while the next batch is claimed and published (at most one commit in flight):
        1.1-1.3x round after round on this 2-core machine (bench/outbox_relay.py), more where
        the database is a network hop away."""
        if self.retention is not None and time.monotonic() >= self._next_purge:
            self._purge()
        if not self.postgres:
            return self.relay_once()
        batch = self._prepare(self._committing_ids)
        if not batch.claimed:
            batch.close(commit=False)
            return 0
        moved, unavailable = self._publish_or_roll_back(batch)
        self._settle()
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix=self.name)
        self._committing_ids = batch.sent
        self._committing = self._committer.submit(self._commit, batch, moved)
        if unavailable is not None:  # raised after committing what was sent
            raise unavailable
        return moved

    def _publish_or_roll_back(self, batch: Batch) -> tuple[int, BackendUnavailable | None]:
        """Publish the batch; on an error that escapes (the database went away), end its
        transaction before raising: an open claim would hold its rows' locks and the xmin
        horizon of the whole database (other relays, pollers, vacuum). What was published is
        published again later, with the same ids."""
        try:
            return self.publisher.publish_batch(batch)
        except BaseException:
            with contextlib.suppress(Exception):  # the error that matters is in flight
                batch.close(commit=False)
            raise

    def _commit(self, batch: Batch, moved: int) -> None:
        """Mark the batch's published rows sent (one statement), then commit."""
        try:
            if batch.sent:
                self.publisher.mark_sent(batch.connection, batch.sent)
        except BaseException:
            batch.close(commit=False)
            raise
        batch.close(commit=True)
        self.relayed += moved

    def _settle(self) -> None:
        """Wait for the commit in flight. If it failed, its rows are still unsent: they are
        published again later with the same message ids, and consumers dedupe them."""
        if self._committing is None:
            return
        try:
            self._committing.result()
        except Exception:
            log.exception("%s: marking rows sent failed; they will be relayed again", self.name)
        finally:
            self._committing, self._committing_ids = None, []

    def _prepare(self, ours: list[int]) -> Batch:
        """Claim and decode a batch in a new transaction; ``ours`` are rows this relay has in
        flight (not another relay's). Bad rows are dead-lettered in that transaction."""
        if self.postgres and not self._ordered:
            self._migrate()
        connection = self.engine.connect()
        transaction = connection.begin()
        try:
            rows, elsewhere = self._claim(connection, ours)
            batch = Batch(connection, transaction, [row.id for row in rows], [], set())
            for row in rows:
                aggregate = (row.aggregate_type, row.aggregate_id)
                if aggregate in batch.held or row.key > elsewhere.get(aggregate, row.key):
                    batch.held.add(aggregate)  # never overtake another relay's earlier row
                    continue
                try:
                    message = self._decode(row)
                    item = Ready(
                        row, aggregate, message, self.publisher.id_of(row), headers_of(row)
                    )
                except (UnknownContract, ValidationError, ValueError) as error:
                    self.publisher.dead_letter(connection, row, f"{type(error).__name__}: {error}")
                    batch.done += 1
                    continue
                batch.ready.append(item)
        except BaseException:
            with contextlib.suppress(Exception):  # the error that matters is in flight
                transaction.rollback()
                connection.close()
            raise
        return batch

    def _migrate(self) -> None:
        """An outbox created by an older version has no commit order yet: add it (needs the
        privileges ``interchange outbox init`` needs, once)."""
        table = self.outbox.name
        try:
            with self.engine.begin() as connection:
                if not outbox_order.installed(connection, table):
                    log.warning("%s: adding commit order to the outbox table", self.name)
                    outbox_order.install(connection, table)
        except DBAPIError as error:
            raise outbox_order.OutboxNotMigrated(
                f"outbox {table} has no commit order (created by an older version) and adding "
                f"it failed: {error.orig}. Run `interchange outbox init --table {table}` as a "
                "role that may create tables, functions and triggers on it (its owner)"
            ) from error
        self._ordered = True

    def _decode(self, row: Row) -> Contract:
        model = self._models.get((row.contract, row.version))
        if model is None:
            model = self._models[row.contract, row.version] = self.bus.contracts.get(
                row.contract, row.version
            )
        return model.model_validate_json(row.payload)

    def _id_of(self, row: Row) -> str:
        return row.message_id or f"{self.outbox.name}-{row.id}"

    # -- running ---------------------------------------------------------------------------

    def wait_for_rows(self) -> None:
        """Until a NOTIFY (PostgreSQL) or ``poll_interval`` passes, whichever is first."""
        if not self.postgres:
            super().wait_for_rows()
            return
        try:
            if self._listener is None:
                raw = self.engine.raw_connection()
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
                raw.driver_connection.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
                self._listener = raw
            listener = self._listener.driver_connection
            deadline = time.monotonic() + self.poll_interval
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # in slices of half a second, so that stop() is prompt
                if list(listener.notifies(timeout=min(left, 0.5), stop_after=1)):
                    return
        except Exception as error:  # a lost listener: polling covers until it is back
            log.warning("outbox relay: LISTEN failed (%s); polling", error)
            self._close_listener()
            self._stop.wait(self.poll_interval)

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # already broken
                self._listener.close()
            self._listener = None

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the round in hand and its commit, then stop."""
        super().stop(timeout)
        self._settle()
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None
        self._close_listener()

    def purge_sent(self) -> int:
        """Delete the rows sent more than ``retention_hours`` ago, in bounded batches (each a
        transaction); the running loop does it every ``purge_every`` seconds. Returns how many
        rows were deleted."""
        if self.retention is None:
            return 0
        return purge_sent(self.engine, self.outbox, self.retention, batch=self.batch)

    def _purge(self) -> None:
        self._next_purge = time.monotonic() + self.purge_every
        try:
            if purged := self.purge_sent():
                log.info("%s: purged %d rows sent before the retention", self.name, purged)
        except Exception:  # relaying matters more: the next purge tries again
            log.exception("%s: purging sent rows failed", self.name)

    def pending(self) -> int:
        """Rows not sent yet."""
        with self.engine.connect() as connection:
            count = select(func.count()).where(self.outbox.c.sent_at.is_(None))
            return int(connection.execute(count.select_from(self.outbox)).scalar_one())
