"""A relay in a process of its own, for the crash test:

    python -m tests.sql.relay_worker DATABASE_URL TABLE CHANNEL_PREFIX KAFKA_URL DIE_AT MODE

relays until the outbox is empty; with DIE_AT > 0 it SIGKILLs itself right after its DIE_AT-th
batch was published (confirmed), before the transaction marking it sent commits: the worst
point to die. MODE ``rounds`` calls ``relay_once()`` round after round; ``running`` runs
``start()``, where the previous round's marks may still be committing at that point;
``forever`` runs ``start()`` next to writers that are still adding rows, until killed."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from interchange import Bus, Settings
from interchange.connectors.sql import OutboxRelay
from interchange.testing import wait_until
from tests.sql.test_outbox import OrderPlaced  # noqa: F401  (registers the contract)


def main() -> None:
    url, table, prefix, kafka, die_at, mode = sys.argv[1:7]
    settings = Settings.without_environment(
        backends={"commands": "memory://", "events": kafka}, channel_prefix=prefix
    )
    bus = Bus(settings)
    relay = OutboxRelay(bus, url, table=table, batch=100)
    sends = 0
    send = relay.publisher.send

    def send_then_maybe_die(run: Any) -> None:
        nonlocal sends
        send(run)
        sends += 1
        if sends == int(die_at):
            os.kill(os.getpid(), signal.SIGKILL)

    relay.publisher.send = send_then_maybe_die  # type: ignore[method-assign]
    if mode == "forever":  # next to writers: until killed (or a minute passed)
        relay.poll_interval = 0.05
        relay.start()
        time.sleep(60)
        relay.stop()
    elif mode == "running":
        relay.poll_interval = 0.05
        relay.start()
        wait_until(lambda: relay.pending() == 0, timeout=60, message="outbox drained")
        relay.stop()
    else:
        while relay.pending():
            relay.relay_once()
    bus.close()


if __name__ == "__main__":
    main()
