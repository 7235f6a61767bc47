"""A SQL sink in a process of its own, for the crash test:

    python -m tests.sql.sink_worker DATABASE_URL TABLE CHANNEL_PREFIX KAFKA_URL DIE_AT COUNT

applies Customer events until TABLE holds COUNT rows; with DIE_AT > 0 it SIGKILLs itself at
its DIE_AT-th commit, after the upsert and the processed id were written and before they are
committed: the worst point to die."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from sqlalchemy import event, text

from interchange import Bus, Settings
from interchange.config import SqlSinkConnector
from interchange.connectors.sql.sink import SqlSink
from tests.sql.test_sink import Customer  # noqa: F401  (registers the contract)


def main() -> None:
    url, table, prefix, kafka, die_at, count = sys.argv[1:7]
    # the killed member must leave the group soon, or the restarted one waits 45 s to join
    kafka += "?session.timeout.ms=6000&heartbeat.interval.ms=1000"
    bus = Bus(
        Settings.without_environment(
            backends={"commands": "memory://", "events": kafka}, channel_prefix=prefix
        )
    )
    sink = SqlSink(
        SqlSinkConnector(
            name=f"test-{table}",
            url=url,
            contract="sql.sink.customer",
            table=table,
            keys=["cust_no"],
            columns={"cust_no": "id", "cust_name": "name", "town": "city"},
        )
    )
    commits = 0

    @event.listens_for(sink.engine, "commit")
    def die_before_commit(connection: Any) -> None:
        nonlocal commits
        commits += 1
        if commits == int(die_at):
            os.kill(os.getpid(), signal.SIGKILL)

    sink.attach(bus)
    deadline = time.monotonic() + 90
    with bus:
        while time.monotonic() < deadline:
            with sink.engine.connect() as connection:
                rows = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            if rows >= int(count):
                return
            time.sleep(0.2)
    sys.exit("timed out")


if __name__ == "__main__":
    main()
