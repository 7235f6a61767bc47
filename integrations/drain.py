"""Failover wiring for the Bus: wrap the primaries, and drain the spool back into them.

A Bus whose configuration names ``backends.fallback`` publishes through failover transports
(adapters.failover) and runs a drainer thread while started: every ``drain_interval`` it
forwards what the spool holds to primaries that answer again, oldest first per destination.
``interchange drain`` does the same once, from the command line.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from interchange.adapters import CommandTransport, EventTransport, Spool, TransportError, open_spool
from interchange.adapters.failover import FailoverCommandTransport, FailoverEventTransport
from interchange.adapters.logs import RateLimit
from interchange.adapters.spool_names import primary_identity
from interchange.config import Settings

log = logging.getLogger("interchange")
paused = logging.getLogger("interchange.drain")
"""Says a side's drain could not reach the spool: every ``drain_interval`` while the fallback
is down, so one line per side per ``logs.EVERY`` seconds, with how many were held back."""
paused.addFilter(RateLimit())


_STOP_WITHIN = 1.0
"""Seconds stop() waits for the drain round under way."""


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
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        """How this Bus signs the failover status it reports to the spool (host:pid:bus)."""

    def drain(self, progress: Callable[[int], None] | None = None) -> int:
        """Forward what the spool holds; returns how many messages went to their primary."""
        forwarded = 0
        for side in self.sides:
            try:
                forwarded += side.drain(progress=progress)
            except TransportError as error:  # the spool itself is unreachable: try later
                paused.warning("drain of %s paused: %s", side.side, error)
        return forwarded

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="interchange-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.report()
        while not self._stop.wait(self.interval):
            self.drain()
            if not self._stop.is_set():
                self.report()

    def report(self) -> None:
        """Tell other processes (``interchange health``) this Bus's circuit states. The report
        expires unless renewed, so a process that died stops being shown."""
        status: dict[str, Any] = {"reported_at": time.time()}
        for side in self.sides:
            status[side.side] = {
                "primary": side.namespace.rstrip(":"),
                "circuit": side.circuit.state,
                "spooled": side.stats.spooled,
                "drained": side.stats.drained,
            }
        try:
            self.spool.report(self.process, status, ttl=max(5.0, 4 * self.interval))
        except TransportError as error:  # the spool is unreachable: health says so anyway
            log.debug("failover status not reported: %s", error)

    def stop(self) -> None:
        """Stop draining within about a second. A round still waiting for a silent spool or
        primary (up to ``fallback_timeout``) is left to end on its own: it deletes nothing
        that was not forwarded, and what it had not deleted is drained again later (consumers
        dedupe). Waiting for it held a SIGTERM past the grace period."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_STOP_WITHIN)
            ended, self._thread = not self._thread.is_alive(), None
            if not ended:
                log.info("a drain round still waits for a broker: left to end on its own")
                return  # the spool does not answer: its status report expires on its own
            # withdrawn at once where Redis answers; a silent one is not waited for past a
            # second (the report expires on its own)
            withdrawing = threading.Thread(target=self._withdraw, daemon=True)
            withdrawing.start()
            withdrawing.join(_STOP_WITHIN)

    def _withdraw(self) -> None:
        try:
            self.spool.report(self.process, None, ttl=0)
        except TransportError as error:
            log.debug("failover status not withdrawn: %s", error)

    def depth(self) -> int:
        """Entries waiting for this Bus's primaries (other primaries' lines not counted)."""
        return sum(int(self.spool.depth(side.namespace)) for side in self.sides)

    def refused(self) -> int:
        """Spooled entries this Bus's primaries refused, set aside (not drained again)."""
        return sum(int(self.spool.refused(side.namespace)) for side in self.sides)

    def status(self, depth: bool = True) -> dict[str, dict[str, Any]]:
        return {side.side: side.status(depth) for side in self.sides}

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
    # each side's lines are named after its primary's destination: only a Bus whose primary
    # delivers there drains them (adapters.spool_names)
    command_side = FailoverCommandTransport(
        commands,
        spool,
        "commands",
        backends.cool_down,
        within,
        identity=primary_identity(backends.commands),
    )
    event_side = FailoverEventTransport(
        events,
        spool,
        "events",
        backends.cool_down,
        within,
        identity=primary_identity(backends.events),
    )
    drainer = Drainer(spool, [command_side, event_side], backends.drain_interval)
    return command_side, event_side, drainer
