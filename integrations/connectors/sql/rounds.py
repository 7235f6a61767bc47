"""The loop every SQL connector runs on a thread of its own: a round, then a wait when the round
found less than a full batch; failures back off and never end the loop."""

from __future__ import annotations

import logging
import threading

from interchange.adapters import BackendUnavailable
from interchange.adapters.lifecycle import Backoff
from interchange.errors import PollerError

log = logging.getLogger("interchange.connectors.sql")


class Rounds:
    """Subclasses give ``name``, ``batch``, ``poll_interval`` and ``round()`` (rows moved)."""

    name: str
    batch: int
    poll_interval: float

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self) -> int:
        raise NotImplementedError

    def start(self) -> Rounds:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        backoff = Backoff(first=0.5, limit=10.0)
        while not self._stop.is_set():
            try:
                moved = self.round()
                backoff.reset()
            except BackendUnavailable as error:  # every backend down: nothing was marked
                log.warning("%s: %s; trying again in %.1fs", self.name, error, backoff.next)
                backoff.wait(self._stop)
                continue
            except PollerError as error:  # one line says it all (the driver's error chained)
                log.error("%s: %s; trying again in %.1fs", self.name, error, backoff.next)
                backoff.wait(self._stop)
                continue
            except Exception:  # the database went away: keep the loop alive
                log.exception("%s: round failed; trying again in %.1fs", self.name, backoff.next)
                backoff.wait(self._stop)
                continue
            if moved < self.batch:
                self.wait_for_rows()

    def wait_for_rows(self) -> None:
        """Between rounds that found less than a batch: ``poll_interval`` by default."""
        self._stop.wait(self.poll_interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the round in hand, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
