"""A table poller in a process of its own, for the crash test:

    python -m tests.sql.poller_worker DATABASE_URL TABLE CHANNEL_PREFIX KAFKA_URL DIE_AT

polls until the table is read to its end; with DIE_AT > 0 it SIGKILLs itself in its DIE_AT-th
batch, after the batch was published and before the high-water mark moved."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from interchange import Bus, Settings
from interchange.config import TablePollerConnector
from interchange.connectors.sql.poller import TablePoller
from tests.sql.test_poller import OrderChanged  # noqa: F401  (registers the contract)


def order_poller(
    url: str, table: str, prefix: str, events: str, **options: Any
) -> tuple[Bus, TablePoller]:
    """A Bus publishing to ``events`` and a poller of the test's orders table on it (the
    worker processes of the poller tests share this)."""
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": events}, channel_prefix=prefix
        )
    )
    connector = TablePollerConnector(
        name=f"test-{table}",
        url=url,
        table=table,
        contract="sql.poller.order_changed",
        columns={"order_no": "order", "total": "total"},
        key_column="order_no",
        **options,
    )
    return bus, TablePoller(bus, connector)


def main() -> None:
    url, table, prefix, kafka, die_at = sys.argv[1:6]
    bus, poller = order_poller(url, table, prefix, kafka, batch=100)
    batches = 0
    advance = poller._advance

    def advance_or_die(connection: Any, last: Any) -> None:
        nonlocal batches
        batches += 1
        if batches == int(die_at):
            os.kill(os.getpid(), signal.SIGKILL)
        advance(connection, last)

    poller._advance = advance_or_die  # type: ignore[method-assign]
    while poller.poll_once():
        pass
    bus.close()


if __name__ == "__main__":
    main()
