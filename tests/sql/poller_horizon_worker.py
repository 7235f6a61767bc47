"""A table poller in a process of its own, for the concurrent-writers test:

    python -m tests.sql.poller_horizon_worker DATABASE_URL TABLE CHANNEL_PREFIX EVENTS_URL MODE STOP

runs the poller's own loop (small batches, a short poll interval; failures back off) until the
file STOP exists; the test SIGKILLs it whenever it likes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.sql.poller_worker import order_poller


def main() -> None:
    url, table, prefix, events, mode, stop = sys.argv[1:7]
    timestamps = {"timestamp_column": "updated_at"} if mode != "incrementing" else {}
    bus, poller = order_poller(
        url, table, prefix, events, mode=mode, batch=20, poll_interval=0.05, **timestamps
    )
    poller.start()
    while not Path(stop).exists():
        time.sleep(0.05)
    poller.stop()
    bus.close()


if __name__ == "__main__":
    main()
