"""Running a service: a Bus in the foreground until a signal, and a supervisor of worker
processes (``interchange run module:bus --workers N``).

Start: the consumers are started (declaring what they read) on a thread of their own, so a
signal is answered while a broker does not; a broker that does not answer is tried again, with
backoff, for up to ``wait_for_brokers`` seconds, then BrokersUnreachable.

Shutdown, on SIGTERM or SIGINT: consumers stop taking messages, the handlers in flight finish
within the grace period, what finished is acknowledged or committed, the transports flush, and
the process exits 0 (1 when a handler outlived the grace period: its message comes again, to
this service or another; consumers with no delivery in hand closing their connections are not
handlers, see workers._CLOSING). A second signal stops at once. Closing the transports gets what is
left of the grace period (at least a second): every message a publish returned for was
already confirmed by its broker, so a close that a silent broker holds is left behind.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from interchange.adapters.errors import BackendUnavailable, ConfigurationError, TransportError
from interchange.adapters.lifecycle import Abandonable, Backoff

log = logging.getLogger("interchange.runtime")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_GRACE = 30.0


class BrokersUnreachable(BackendUnavailable):
    """The consumers could not start: a broker did not answer within ``wait_for_brokers``
    seconds (``interchange run --wait-for-brokers``; exit code 3). The cause says why."""


class Runnable(Protocol):
    """What ``serve`` runs: a Bus."""

    def start(self) -> Any: ...

    def stop(self, timeout: float = 10.0) -> bool: ...

    def close(self) -> None: ...


def importable_from_here() -> None:
    """Find the user's modules from the current directory, as ``python -m`` does."""
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)


class ServiceError(Exception):
    """The service's own code raised while it was loaded (its module imported, its factory
    called): a bug in that code, shown with its traceback (``__cause__``), not a setting."""


def load_target(target: str) -> Any:
    """The object ``package.module:attribute`` names; a callable that is not a Bus (a factory)
    is called to make one. Raises ValueError saying what is wrong with ``target``, a
    ConfigurationError met while the service built its Bus (``Bus.from_config()`` at module
    level: a wrong setting, not a bug) as it is, and ServiceError (the original as its cause)
    when the service's own code raised anything else."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{target!r} is not module:attribute (e.g. myservice.app:bus)")
    importable_from_here()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise ServiceError(f"importing {module_name} raised {error!r}") from error
        raise  # the service's module itself is not there: a wrong target, one line
    except ConfigurationError:
        raise  # a wrong setting met while the module built its Bus: one line, exit 2
    except Exception as error:  # the user's module ran and raised: their bug, their traceback
        raise ServiceError(f"importing {module_name} raised {error!r}") from error
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not hasattr(found, "run_forever") and callable(found):
        try:
            found = found()
        except ConfigurationError:
            raise  # a wrong setting, not the factory's bug
        except Exception as error:
            raise ServiceError(f"calling {target} raised {error!r}") from error
    if not hasattr(found, "run_forever"):
        raise ValueError(f"{target} is {type(found).__name__}, not a Bus")
    return found


def start_within(bus: Runnable, wait: float, stopping: threading.Event) -> bool:
    """Start ``bus``, trying again with backoff while a broker does not answer, for up to
    ``wait`` seconds (0: once). False when ``stopping`` was set first (answered within a tenth
    of a second; the start under way is abandoned). Raises BrokersUnreachable."""
    deadline = time.monotonic() + wait
    backoff = Backoff(first=0.5, limit=5.0)

    def start() -> bool:
        bus.start()
        return True

    while True:
        try:
            return Abandonable("interchange-start", start, _nothing).result(stopping) is not None
        except TransportError as error:
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" within {wait:g}s" if wait else ""
                raise BrokersUnreachable(f"the brokers did not answer{waited}: {error}") from error
            log.warning("a broker does not answer (%s); trying again for %.0fs", error, left)
            backoff.next = min(backoff.next, left)
            backoff.wait(stopping)
            if stopping.is_set():
                return False


def _nothing(started: object) -> None:
    """An abandoned start that completes late: serve() has already stopped the bus."""


def serve(
    bus: Runnable,
    grace: float = DEFAULT_GRACE,
    until: threading.Event | None = None,
    *,
    wait_for_brokers: float = 0.0,
    on_serving: Callable[[], None] | None = None,
) -> bool:
    """Start ``bus`` (see ``start_within``; ``on_serving`` is called once its consumers run)
    and block until SIGTERM or SIGINT (or ``until`` is set), then shut down gracefully within
    ``grace`` seconds. Returns True when every handler in flight finished. Signals are handled
    only when called from the main thread."""
    stopping = until or threading.Event()
    received: list[int] = []

    def on_signal(number: int, frame: FrameType | None) -> None:
        received.append(number)
        if len(received) > 1:
            log.warning("second signal: stopping at once")
            os._exit(1)
        log.warning("%s: finishing what is in flight (up to %gs)", signal.strsignal(number), grace)
        stopping.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {number: signal.signal(number, on_signal) for number in SIGNALS}
    started = False
    try:
        started = start_within(bus, wait_for_brokers, stopping)
        if started:
            if on_serving is not None:
                on_serving()
            while not stopping.wait(0.5):
                pass
    finally:
        deadline = time.monotonic() + grace
        finished = bus.stop(grace)
        if finished:
            # a start abandoned midway may hold a transport's lock while it waits for its
            # broker: closing then gets a second, not the rest of the grace
            left = deadline - time.monotonic() if started else 0.0
            _close_within(bus, max(1.0, left))
        for number, handler in previous.items():
            signal.signal(number, handler)
    if not finished:
        # Closing would wait for that handler again; its message is unacknowledged, so it
        # comes again — to this service's next run or another worker.
        log.error("a handler outlived the %gs grace period: its message will come again", grace)
    return finished


def _close_within(bus: Runnable, seconds: float) -> None:
    """Close (flush, release connections) on a thread of its own, waiting ``seconds`` at most:
    a broker that does not answer must not hold the exit (every publish that returned was
    confirmed already; what is left is the connections' goodbyes)."""
    closing = threading.Thread(target=bus.close, name="interchange-close", daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        log.warning("closing took over %.1fs (a broker does not answer): not waited for", seconds)


START_FAILURES = frozenset({1, 2, 3})
"""The exit codes of ``interchange run`` that say its start failed: the service's module raised
(1), a bad setting (2), a broker did not answer (3)."""


class Supervisor:
    """Runs ``count`` worker processes of the same command line and keeps them running: a
    worker that dies is replaced after a backoff (doubling up to ``max_backoff``, reset once a
    worker lived ``settle`` seconds). A slot's first worker that exits with one of
    START_FAILURES before it ever served (touched the ``--serving-file`` it is given) ends the
    supervisor with that code, the others stopped: replacing it would fail the same way
    forever. SIGTERM or SIGINT is passed on to every worker, which shuts down gracefully; a
    second signal kills them."""

    def __init__(
        self,
        command: list[str],
        count: int,
        *,
        grace: float = DEFAULT_GRACE,
        max_backoff: float = 10.0,
        settle: float = 10.0,
        spawn: Callable[[list[str]], subprocess.Popen[bytes]] | None = None,
        slot_args: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.command = command
        self.slot_args = slot_args or (lambda slot: [])
        """Arguments one slot's worker gets besides the command (its own ops port)."""
        self.count = count
        self.grace = grace
        self.max_backoff = max_backoff
        self.settle = settle
        self._spawn = spawn or (lambda argv: subprocess.Popen(argv))
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * count
        self._started_at = [0.0] * count
        self._backoff = [0.0] * count
        self._due = [0.0] * count
        self._stopping = threading.Event()
        self._signals = 0
        self._marks = Path(tempfile.mkdtemp(prefix="interchange-serving-"))
        self._served = [False] * count
        """Whether the slot's worker ever served: then one that dies is replaced."""
        self._failed: int | None = None
        """The exit code of a worker whose start failed: the supervisor's own."""

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: killing the workers")
            for worker in self.workers:
                if worker is not None and worker.poll() is None:
                    worker.kill()
            os._exit(1)
        log.warning("%s: stopping %d worker(s)", signal.strsignal(number), self.count)
        self._stopping.set()

    def _start(self, slot: int) -> None:
        mark = self._marks / str(slot)
        mark.unlink(missing_ok=True)
        serving = ["--serving-file", str(mark)]
        worker = self._spawn([*self.command, *self.slot_args(slot), *serving])
        self.workers[slot] = worker
        self._started_at[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, worker.pid)

    def _tend(self, slot: int) -> None:
        worker = self.workers[slot]
        now = time.monotonic()
        if worker is None:
            if now >= self._due[slot]:
                self._start(slot)
            return
        code = worker.poll()
        self._served[slot] = self._served[slot] or (self._marks / str(slot)).exists()
        if code is None:
            return
        if code in START_FAILURES and not self._served[slot]:
            log.error(
                "worker %d (pid %d) failed to start (exit %d): stopping", slot, worker.pid, code
            )
            self.workers[slot] = None
            self._failed = code
            self._stopping.set()
            return
        lived = now - self._started_at[slot]
        if lived >= self.settle:
            self._backoff[slot] = 0.0
        self._backoff[slot] = min(self.max_backoff, max(0.5, self._backoff[slot] * 2))
        self._due[slot] = now + self._backoff[slot]
        self.workers[slot] = None
        log.error(
            "worker %d (pid %d) exited with %s; replacing it in %.1fs",
            slot,
            worker.pid,
            code,
            self._backoff[slot],
        )

    def run(self) -> int:
        """Run until a signal; returns the exit code: 0 when every worker shut down cleanly."""
        previous = {number: signal.signal(number, self._on_signal) for number in SIGNALS}
        try:
            for slot in range(self.count):
                self._start(slot)
            while not self._stopping.wait(0.2):
                for slot in range(self.count):
                    if not self._stopping.is_set():  # a failed start stops the others
                        self._tend(slot)
            code = self._shutdown()
            return code if self._failed is None else self._failed
        finally:
            shutil.rmtree(self._marks, ignore_errors=True)
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _shutdown(self) -> int:
        running = [w for w in self.workers if w is not None and w.poll() is None]
        for worker in running:
            worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 10.0  # the grace, and time to flush
        codes = []
        for worker in running:
            try:
                codes.append(worker.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time: killing it", worker.pid)
                worker.kill()
                codes.append(worker.wait())
        return 0 if all(code == 0 for code in codes) else 1
