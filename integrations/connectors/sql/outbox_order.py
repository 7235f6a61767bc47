"""Commit order on PostgreSQL: each outbox row is stamped, as its transaction commits, with
that transaction's place in the commit order (``commit_seq``); the relay reads unsent rows in
``(commit_seq, id)`` order.

How: a constraint trigger, ``DEFERRABLE INITIALLY DEFERRED``, runs for each inserted row at
COMMIT. The first time in a transaction it increments a one-row counter
(``interchange_outbox_commits``, shared by every outbox of the schema) with ``UPDATE ...
RETURNING`` and remembers the value in a transaction-local setting; every row of the
transaction is stamped with it. The counter's row lock is held until the commit has finished
(the transaction is visible before its locks are released), so the next writer gets the next
value only after this one committed: values follow commit order, without gaps (a rollback
undoes its increment), and every snapshot sees a prefix of them — a relay never sees value
N+1 without N. A transaction that has not finished committing is invisible with its rows.

The cost: committing outbox writers are serialized from their trigger to the end of their
commit (its WAL flush included). Plain-SQL writers need nothing but INSERT (and USAGE on the
id sequence): the function runs as its owner (SECURITY DEFINER, a fixed search_path). Rows
that exist before the migration, and rows of a writer that disables triggers
(``session_replication_role = replica``), keep ``commit_seq`` 0: published first, in id
order. Needs no server setting (no ``wal_level=logical``, no ``track_commit_timestamp``):
privileges to create a table, a function and a trigger, once.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from interchange.errors import OutboxNotMigrated as OutboxNotMigrated  # re-exported

COUNTER = "interchange_outbox_commits"
"""The one-row counter every outbox of a schema takes its commit stamps from."""

SETTING = "interchange.commit_seq"
"""The transaction-local setting that remembers a transaction's stamp."""


def trigger_name(table: str) -> str:
    return f"{table}_commit_seq"


def installed(connection: Connection, table: str) -> bool:
    """Whether ``table`` has its commit-order trigger (an outbox of an older version has not)."""
    found = connection.execute(
        text("SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(:table) AND tgname = :name"),
        {"table": table, "name": trigger_name(table)},
    )
    return found.first() is not None


def install(connection: Connection, table: str) -> None:
    """Add commit order to ``table``, in the caller's transaction; idempotent, and the way an
    outbox of an older version is migrated. Creating the trigger waits for the transactions
    writing the table and blocks new ones until the caller commits: every row committed
    before carries 0, every row after a stamp."""
    # two relays migrating at once would race on CREATE OR REPLACE FUNCTION
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('interchange_outbox_ddl'))"))
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    counter, function = f"{schema}.{COUNTER}", f"{schema}.{trigger_name(table)}"
    connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {counter} "
            "(one boolean PRIMARY KEY DEFAULT true CHECK (one), last bigint NOT NULL)"
        )
    )
    connection.execute(text(f"INSERT INTO {counter} (last) VALUES (0) ON CONFLICT DO NOTHING"))
    # a constant default: existing rows get 0 without being rewritten (PostgreSQL 11+)
    connection.execute(
        text(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS commit_seq bigint NOT NULL DEFAULT 0")
    )
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {table}_unsent_in_commit_order "
            f"ON {table} (commit_seq, id) WHERE sent_at IS NULL"
        )
    )
    # the unsent rows in id order: read by nothing here any more, and every row written
    # (twice: inserted, then stamped) would pay for it
    connection.execute(text(f"DROP INDEX IF EXISTS {table}_unsent"))
    connection.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ "
            f"DECLARE seq bigint := nullif(current_setting('{SETTING}', true), '')::bigint; "
            "BEGIN "
            "IF seq IS NULL THEN "
            f"UPDATE {counter} SET last = last + 1 RETURNING last INTO seq; "
            f"PERFORM set_config('{SETTING}', seq::text, true); "
            "END IF; "
            f"UPDATE {schema}.{table} SET commit_seq = seq WHERE id = NEW.id; "
            "RETURN NULL; END $$"
        )
    )
    connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger_name(table)} ON {table}"))
    connection.execute(
        text(
            f"CREATE CONSTRAINT TRIGGER {trigger_name(table)} AFTER INSERT ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            f"EXECUTE FUNCTION {function}()"
        )
    )
