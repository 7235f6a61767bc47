"""A table poller in a process of its own, for the concurrent-writers test:

    python -m tests.sql.poller_horizon_worker DATABASE_URL TABLE CHANNEL_PREFIX EVENTS_URL MODE STOP

runs the poller's own loop (small batches, a short poll interval; failures back off) until the
file STOP exists; the test SIGKILLs it whenever it likes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from interchange import Bus, Settings
from interchange.config import TablePollerConnector
from interchange.connectors.sql.poller import TablePoller
from tests.sql.test_poller import OrderChanged  # noqa: F401  (registers the contract)


def main() -> None:
    url, table, prefix, events, mode, stop = sys.argv[1:7]
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": events}, channel_prefix=prefix
        )
    )
    timestamps = {"timestamp_column": "updated_at"} if mode != "incrementing" else {}
    poller = TablePoller(
        bus,
        TablePollerConnector(
            name=f"test-{table}",
            url=url,
            table=table,
            contract="sql.poller.order_changed",
            columns={"order_no": "order", "total": "total"},
            key_column="order_no",
            mode=mode,  # type: ignore[arg-type]
            batch=20,
            poll_interval=0.05,
            **timestamps,  # type: ignore[arg-type]
        ),
    )
    poller.start()
    while not Path(stop).exists():
        time.sleep(0.05)
    poller.stop()
    bus.close()


if __name__ == "__main__":
    main()
