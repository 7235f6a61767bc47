"""Legacy systems over their databases (SQLAlchemy Core; SQLite embedded, PostgreSQL real).

- ``outbox``: the transactional outbox and its relay — rows an application writes in its own
  transaction, published in order and marked sent only once a broker stored them
  (the relay's Bus has no fallback: the table is its store).
- ``poller``: a legacy table's new (or updated) rows published as events, the high-water mark
  in the same database (Kafka Connect JDBC source's ``incrementing`` and
  ``timestamp+incrementing`` modes).
- ``sink``: a contract's messages upserted into a legacy table from configuration, each
  effect exactly once (the message id recorded in the same transaction).
- ``tables``: the tables the connectors own, and engines for database URLs.

Install with the ``sql`` extra (``postgres`` adds psycopg).
"""

try:
    import sqlalchemy  # noqa: F401
except ImportError as missing:
    raise ImportError(
        f"the SQL connectors need their extra ({missing}): pip install 'interchange-bus[sql]' "
        "(for PostgreSQL: 'interchange-bus[postgres]')"
    ) from missing

from interchange.connectors.sql.outbox import OutboxRelay, add_to_outbox
from interchange.connectors.sql.tables import create_outbox, engine_for, outbox_table

__all__ = ["OutboxRelay", "add_to_outbox", "create_outbox", "engine_for", "outbox_table"]
