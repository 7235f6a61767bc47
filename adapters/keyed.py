"""Key-ordered concurrency: one group member's records handled on several threads at once, in
order per partition key, where a record waiting to be retried holds only its own key.

This is what an event subscription with ``workers > 1`` runs (Confluent's parallel consumer
calls it key ordering). The member's reading loop ``submit``s each record behind its key; a
free worker takes the first record of any key that is neither running nor waiting out a
Retry's delay. A final outcome (Ack or DeadLetter) is passed to ``settle`` on the worker (the
adapter writes the dead letter, acknowledges, or notes the offset done); only then does the
key's next record run. If ``settle`` raises, the record is handled again after a short delay:
it never counts as done before its outcome was stored.

On a log, records finish out of order across keys, so a member may only commit up to the
first record that is not done yet: ``Watermarks`` keeps that position per partition.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from interchange.adapters.lifecycle import CRASH_DELAY, run_handler
from interchange.adapters.message import Delivery, DeliveryHandler, Outcome, Retry

log = logging.getLogger("interchange.adapters")

LIMIT = 4000
"""Records a member holds unsettled before its reading loop waits (bounds memory). Kafka
refetches for ~0.35 s after a paused member resumes (measured): with 32 workers handling
~3,000 records/s, the 2,000 left when it resumes at half the bound cover that; at 1,000 and
resuming at once they did not, and the workers stood idle."""


@dataclass(eq=False)
class Work:
    """One record: its key, how to build its delivery for attempt n, the adapter's token."""

    key: Hashable
    delivery: Callable[[int], Delivery]
    token: Any = None
    attempt: int = 1


@dataclass(eq=False)
class _Lane:
    key: Hashable
    works: deque[Work] = field(default_factory=deque)
    live: bool = True


class KeyedWorkers:
    """``workers`` threads handling submitted records in order per key."""

    def __init__(
        self,
        name: str,
        workers: int,
        handler: DeliveryHandler,
        settle: Callable[[Work, Delivery, Outcome], None],
        limit: int = LIMIT,
    ) -> None:
        self._handler, self._settle, self._limit = handler, settle, limit
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        """Signalled for the reading loop and drop(): a record settled, lanes were dropped."""
        self._work = threading.Condition(lock)
        """Signalled for the workers, one per lane made ready: waking all 32 workers for every
        record that finished cost a third of the throughput of 10 ms handlers (measured)."""
        self._lanes: dict[Hashable, _Lane] = {}
        self._ready: deque[_Lane] = deque()
        self._later: list[tuple[float, int, _Lane]] = []  # lanes waiting out a Retry's delay
        self._running: set[_Lane] = set()
        self._order = itertools.count()
        self._unsettled = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- the reading loop's side ------------------------------------------------------------

    def submit(self, work: Work) -> None:
        """Queue ``work`` behind the earlier records of its key."""
        with self._cond:
            lane = self._lanes.get(work.key)
            if lane is None:
                lane = self._lanes[work.key] = _Lane(work.key)
                self._ready.append(lane)
                self._work.notify()
            lane.works.append(work)
            self._unsettled += 1

    def wait_for_room(self, timeout: float, below: int | None = None) -> bool:
        """Wait up to ``timeout`` until fewer than ``below`` (default ``limit``) records are
        unsettled."""
        bound = self._limit if below is None else below
        with self._cond:
            return self._cond.wait_for(lambda: self._unsettled < bound, timeout)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def unsettled(self) -> int:
        with self._cond:
            return self._unsettled

    def drop(self, where: Callable[[Hashable], bool], timeout: float = 10.0) -> bool:
        """Forget the records of every key ``where`` accepts (their partitions were taken
        away), and wait up to ``timeout`` for those already running. True if they ended."""
        with self._cond:
            for key in [key for key in self._lanes if where(key)]:
                lane = self._lanes.pop(key)
                lane.live = False
                self._unsettled -= len(lane.works)
            self._work.notify_all()
            return self._cond.wait_for(
                lambda: not any(where(lane.key) for lane in self._running), timeout
            )

    def stop(self) -> None:
        """Start no further record; the running ones finish."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            self._work.notify_all()

    def join(self, timeout: float) -> bool:
        """Stop, and wait up to ``timeout`` for running records. True if all ended."""
        self.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    # -- the workers' side ------------------------------------------------------------------

    def _next(self) -> _Lane | None:
        """The next lane whose first record may run; None once stopped. Holds the lock."""
        while not self._stopped:
            now = time.monotonic()
            while self._later and self._later[0][0] <= now:
                self._ready.append(heapq.heappop(self._later)[2])
            while self._ready:
                lane = self._ready.popleft()
                if lane.live:
                    self._running.add(lane)
                    return lane
            wait = self._later[0][0] - now if self._later else 0.5
            self._work.wait(min(wait, 0.5))
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                lane = self._next()
                if lane is None:
                    return
                work = lane.works[0]
            outcome = self._handle(work)
            with self._cond:
                self._running.discard(lane)
                self._finish(lane, work, outcome)
                self._cond.notify_all()  # the reading loop, drop(): a few waiters at most

    def _handle(self, work: Work) -> Outcome:
        delivery = work.delivery(work.attempt)
        outcome = run_handler(self._handler, delivery)
        if isinstance(outcome, Retry):
            return outcome
        try:
            self._settle(work, delivery, outcome)
        except Exception as error:  # e.g. the dead-letter channel refused: try again
            log.exception("settling %s failed; handling it again", delivery.channel)
            return Retry(delay=CRASH_DELAY, reason=f"{type(error).__name__}: {error}")
        return outcome

    def _finish(self, lane: _Lane, work: Work, outcome: Outcome) -> None:
        if not lane.live:
            return  # dropped while running: its records belong to another member now
        if isinstance(outcome, Retry):
            work.attempt += 1
            due = time.monotonic() + outcome.delay
            heapq.heappush(self._later, (due, next(self._order), lane))
            self._work.notify()  # a waiting worker times its wait to the earliest retry
            return
        lane.works.popleft()
        self._unsettled -= 1
        if lane.works:
            self._ready.append(lane)
            self._work.notify()
        else:
            lane.live = False
            del self._lanes[lane.key]


class Watermarks:
    """Per partition, the offsets handed to workers in order, and how far they are all done:
    the position a member may commit."""

    def __init__(self) -> None:
        self._pending: dict[int, deque[int]] = {}
        self._done: dict[int, set[int]] = {}

    def add(self, partition: int, offset: int) -> None:
        self._pending.setdefault(partition, deque()).append(offset)

    def done(self, partition: int, offset: int) -> int | None:
        """Note ``offset`` done; the next offset to commit when that moved, else None."""
        pending = self._pending.get(partition)
        if pending is None:
            return None  # the partition was forgotten (revoked) meanwhile
        done = self._done.setdefault(partition, set())
        done.add(offset)
        moved = None
        while pending and pending[0] in done:
            done.discard(moved := pending.popleft())
        return None if moved is None else moved + 1

    def forget(self, partitions: list[int] | None = None) -> None:
        for partition in list(self._pending) if partitions is None else partitions:
            self._pending.pop(partition, None)
            self._done.pop(partition, None)
