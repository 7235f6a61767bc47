"""The lease that lets one member of an event consumer group read it at a time.

Redis gives a group's new entries to whichever member asks first, so members of one group
handle one key's events at the same time and out of order. Kafka keeps a key's order because
a partition has one reader per group; here a stream (the topic's, or one of its partitions:
partitions.py) is that partition, and the lease says who its reader is. It is a key in Redis,
``interchange:lease:<stream>|<group>``, holding its holder's name (the consumer's, or the
member's for partitions) with a TTL (``lease_ttl``): the holder renews it from a heartbeat
thread every third of the TTL, and the others try to take it as often (every second at
least). A member that dies stops renewing, and another takes over ``lease_ttl`` later; one
that closes gives the lease back, and another takes over within a second.

``held()`` answers locally: the lease counts as held until ``lease_ttl`` after the moment the
last successful renewal was *sent*, which is never later than Redis's own expiry. A member
checks it before handling each entry, so one that lost the lease (Redis unreachable for the
TTL) handles no further entry. A member that finishes no entry for ``stuck_after`` seconds
while it has some in hand (a handler that hangs) stops renewing too, as Kafka drops a member
past ``max.poll.interval.ms``: the group goes on without it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import redis

from interchange.adapters.redis.partitions import Share

log = logging.getLogger("interchange.adapters.redis")

# take the lease if free, or renew it if ours: atomically, in Redis
_TAKE = (
    "local holder = redis.call('GET', KEYS[1]) "
    "if holder == ARGV[1] or not holder then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0"
)
_GIVE_BACK = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"


def lease_key(stream: str, group: str) -> str:
    return f"interchange:lease:{stream}|{group}"


class GroupLease:
    """One member's side of a group's lease: ``start()`` the heartbeat, ``held()`` before each
    entry, ``touch()`` as the reading loop makes progress, ``close()`` to give it back."""

    def __init__(
        self,
        client: Any,
        stream: str,
        group: str,
        owner: str,
        ttl: float,
        stuck_after: float,
        share: Share | None = None,
    ) -> None:
        self.client, self.key, self.owner = client, lease_key(stream, group), owner
        self.ttl, self.stuck_after, self.share = ttl, stuck_after, share
        self._yielding = False
        self._yield_lock = threading.Lock()  # a renewal never re-takes a lease handed back
        """Given up locally for another member (over this member's share of partitions), still
        renewed in Redis until the reader stopped and ``hand_back()`` deleted it."""
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)
        self._valid_until = 0.0
        self._progress = time.monotonic()
        self._changed = threading.Event()  # set when the lease was taken
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{group}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    def touch(self) -> None:
        """The member made progress (finished an entry, or has none in hand): worth renewing
        for."""
        self._progress = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the lease; True once held."""
        if self.held():
            return True
        self._changed.wait(timeout)
        self._changed.clear()
        return self.held()

    def _beat(self) -> None:
        while True:
            held = self.renew()
            # a standby looks at least every second: a lease given back is taken at once
            if self._stop.wait(self.ttl / 3 if held else min(self.ttl / 3, 1.0)):
                return

    def renew(self) -> bool:
        """Take or renew the lease; True if this member holds it now."""
        if time.monotonic() - self._progress > self.stuck_after:
            if self.held():
                log.warning(
                    "%s made no progress for %.0fs: giving up the lease of %s",
                    self.owner,
                    self.stuck_after,
                    self.key,
                )
            self._drop()
            return False
        sent = time.monotonic()
        try:
            with self._yield_lock:
                if self._yielding:  # others stay out until the reader has stopped
                    self._take(keys=[self.key], args=[self.owner, int(self.ttl * 1000)])
                    return False
            if self.share is not None:
                self.share.look(self.ttl)
                if self.held() and self.share.over():
                    self._drop()
                    with self._yield_lock:
                        self._yielding = True
                    return False
                if not self.held() and not self.share.may_take():
                    return False
            taken = bool(self._take(keys=[self.key], args=[self.owner, int(self.ttl * 1000)]))
        except redis.RedisError as error:  # held() lapses on its own at the TTL
            log.warning("cannot renew the lease %s: %s", self.key, error)
            return self.held()
        was_held = self.held()
        if not taken:
            self._drop()
            return False
        self._valid_until = sent + self.ttl
        if self.share is not None:
            self.share.took(self.key)
        if not was_held:
            self._changed.set()
        return True

    def _drop(self) -> None:
        self._valid_until = 0.0
        if self.share is not None:
            self.share.left(self.key)

    def hand_back(self) -> None:
        """The reader stopped after the lease was given up for another member: delete it, so
        that member takes it at once."""
        with self._yield_lock:
            if self._yielding:
                with contextlib.suppress(redis.RedisError):  # else it expires on its own
                    self._give_back(keys=[self.key], args=[self.owner])
                self._yielding = False

    def close(self, give_back: bool = True) -> None:
        """Stop renewing; with ``give_back`` (nothing of this member's is still running) hand
        the lease back, so another member takes over at once rather than after the TTL."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._drop()
        if give_back:
            with contextlib.suppress(redis.RedisError):  # else it expires on its own
                self._give_back(keys=[self.key], args=[self.owner])
