"""Failover wiring for the Bus: wrap the primaries, and drain the spool back into them.

A Bus whose configuration names ``backends.fallback`` publishes through failover transports
(adapters.failover) and runs a drainer thread while started: every ``drain_interval`` it
forwards what the spool holds to primaries that answer again, oldest first per destination.
``interchange drain`` does the same once, from the command line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from interchange.adapters import CommandTransport, EventTransport, Spool, TransportError, open_spool
from interchange.adapters.failover import FailoverCommandTransport, FailoverEventTransport
from interchange.config import Settings

log = logging.getLogger("interchange")


class Drainer:
    def __init__(
        self,
        spool: Spool,
        sides: list[FailoverCommandTransport | FailoverEventTransport],
        interval: float,
    ) -> None:
        self.spool = spool
        self.sides = sides
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self, progress: Callable[[int], None] | None = None) -> int:
        """Forward what the spool holds; returns how many messages went to their primary."""
        forwarded = 0
        for side in self.sides:
            try:
                forwarded += side.drain(progress=progress)
            except TransportError as error:  # the spool itself is unreachable: try later
                log.warning("drain of %s paused: %s", side.side, error)
        return forwarded

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="interchange-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.drain()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def depth(self) -> int:
        return int(self.spool.depth())

    def status(self) -> dict[str, dict[str, Any]]:
        return {side.side: side.status() for side in self.sides}

    def close(self) -> None:
        self.stop()
        self.spool.close()


def with_fallback(
    settings: Settings, commands: CommandTransport, events: EventTransport
) -> tuple[CommandTransport, EventTransport, Drainer]:
    backends = settings.backends
    assert backends.fallback is not None
    spool = open_spool(backends.fallback, timeout=backends.fallback_timeout)
    within = backends.fallback_timeout
    command_side = FailoverCommandTransport(commands, spool, "commands", backends.cool_down, within)
    event_side = FailoverEventTransport(events, spool, "events", backends.cool_down, within)
    drainer = Drainer(spool, [command_side, event_side], backends.drain_interval)
    return command_side, event_side, drainer
