"""The two Redis stores beside the Streams backend: the failover spool and the shared dedupe
store."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import redis

from interchange.adapters.message import TransportMessage
from interchange.adapters.redis.errors import mapped
from interchange.adapters.redis.options import client_url
from interchange.adapters.redis.wire import stage_appends, to_delivery, to_fields

_REASON = "x-interchange-refused"


class RedisDedupeStore:
    """Dedupe store shared by every process that points at the same Redis: a consumer that
    replaces a killed one sees what the killed one already handled.

    Keys live under ``<namespace>:<scope>|<message id>`` with the store's TTL. A Redis that
    cannot be reached raises BackendUnavailable: the consumer then retries the delivery later
    rather than risk handling it twice or dropping it.
    """

    def __init__(
        self, url: str, *, ttl: float = 3600.0, namespace: str = "interchange:seen"
    ) -> None:
        self.url = url
        self.ttl_ms = max(1, int(ttl * 1000))
        self.namespace = namespace
        self.client = redis.Redis.from_url(
            client_url(url)[0], socket_timeout=5, socket_connect_timeout=5
        )

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def seen(self, key: str) -> bool:
        with mapped(self.url, "read the dedupe store"):
            return bool(self.client.exists(self._key(key)))

    def remember(self, key: str) -> None:
        with mapped(self.url, "write the dedupe store"):
            self.client.set(self._key(key), b"1", px=self.ttl_ms)

    def remember_in(self, transaction: Any, key: str) -> None:
        """Queue ``remember(key)`` on a redis-py pipeline (``transaction=True``), so the record
        commits atomically with the handler's own writes to this Redis."""
        transaction.set(self._key(key), b"1", px=self.ttl_ms)

    def forget(self, scope: str) -> None:
        # glob-escape the scope: channel names may hold *, ?, [ or ]
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._key(scope)) + "|*"
        with mapped(self.url, "forget in the dedupe store"):
            batch = []
            for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self.client.delete(*batch)
                    batch.clear()
            if batch:
                self.client.delete(*batch)


class RedisSpool:
    """The failover spool: one stream per destination line, ``interchange:spool:<line>``, and
    the set of lines that may hold entries, ``interchange:spool-lines``: finding the lines
    never scans the keyspace (a Redis that also holds a million dedupe keys answers at once).

    Durability is the server's fsync policy (see the module's guarantees); ``interchange
    health`` prints it. An entry is removed only after the primary confirmed its copy.
    """

    PREFIX = "interchange:spool:"
    LINES = "interchange:spool-lines"
    CLAIM = "interchange:spool-claim:"
    REFUSED = "interchange:spool-refused:"
    """``<line>``'s entries the primary refused on drain, each with ``x-interchange-refused``
    (the reason): an operator reads them with XRANGE and deletes the stream when done."""
    REFUSED_LINES = "interchange:spool-refused-lines"
    STATUS = "interchange:failover-status"
    """A hash: process → its last failover status, with the wall-clock time it expires."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.client: Any = redis.Redis.from_url(
            client_url(url)[0], socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._indexed = False
        # take or renew a claim, and give it back, only as its owner: atomically, in Redis
        self._claim = self.client.register_script(
            "local holder = redis.call('GET', KEYS[1]) "
            "if holder == ARGV[1] or not holder then "
            "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0"
        )
        self._release = self.client.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
        )
        # delete the entries; a line left empty leaves the index in the same step, so an
        # append (one MULTI: XADD + SADD) can never fall between the check and the removal
        self._remove = self.client.register_script(
            "redis.call('XDEL', KEYS[1], unpack(ARGV, 2)) "
            "if redis.call('XLEN', KEYS[1]) == 0 then "
            "redis.call('DEL', KEYS[1]) redis.call('SREM', KEYS[2], ARGV[1]) end"
        )

    def append(self, line: str, messages: list[TransportMessage]) -> None:
        with mapped(self.url, f"spool to {line}"), self.client.pipeline(transaction=True) as pipe:
            stage_appends(pipe, self.PREFIX + line, messages)
            pipe.sadd(self.LINES, line)
            pipe.execute()

    def head(self, line: str, count: int) -> list[tuple[str, TransportMessage]]:
        with mapped(self.url, f"read spool {line}"):
            entries = self.client.xrange(self.PREFIX + line, count=count)
        return [
            (entry_id.decode(), to_delivery(line, entry_id, fields, channel=line).message)
            for entry_id, fields in entries
        ]

    def remove(self, line: str, ids: list[str]) -> None:
        if not ids:
            return
        with mapped(self.url, f"trim spool {line}"):
            self._remove(keys=[self.PREFIX + line, self.LINES], args=[line, *ids])

    def _lengths(self) -> dict[str, int]:
        if not self._indexed:
            # spool streams written before the index existed: found once, by one scan
            found = [
                key.decode()[len(self.PREFIX) :]
                for key in self.client.scan_iter(
                    match=self.PREFIX + "*", _type="STREAM", count=1000
                )
            ]
            if found:
                self.client.sadd(self.LINES, *found)
            self._indexed = True
        names = sorted(member.decode() for member in self.client.smembers(self.LINES))
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xlen(self.PREFIX + name)
            return dict(zip(names, map(int, pipe.execute()), strict=True))

    def lines(self) -> list[str]:
        with mapped(self.url, "list spools"):
            return [line for line, length in self._lengths().items() if length]

    def depth(self, prefix: str = "") -> int:
        with mapped(self.url, "measure spools"):
            return sum(n for line, n in self._lengths().items() if line.startswith(prefix))

    def refuse(self, line: str, entries: list[tuple[str, TransportMessage]], reason: str) -> None:
        # one MULTI: copied aside and removed from the line together, never lost or doubled
        doing = f"set aside refused entries of {line}"
        with mapped(self.url, doing), self.client.pipeline(transaction=True) as pipe:
            for _, message in entries:
                pipe.xadd(self.REFUSED + line, {**to_fields(message), _REASON: reason})
            pipe.sadd(self.REFUSED_LINES, line)
            ids = [spool_id for spool_id, _ in entries]
            self._remove(keys=[self.PREFIX + line, self.LINES], args=[line, *ids], client=pipe)
            pipe.execute()

    def refused(self, prefix: str = "") -> int:
        with mapped(self.url, "count refused spool entries"):
            names = [m.decode() for m in self.client.smembers(self.REFUSED_LINES)]
            with self.client.pipeline(transaction=False) as pipe:
                for name in (n for n in names if n.startswith(prefix)):
                    pipe.xlen(self.REFUSED + name)
                return sum(map(int, pipe.execute()))

    def report(self, process: str, status: dict[str, Any] | None, ttl: float) -> None:
        with mapped(self.url, "report failover status"):
            if status is None:
                self.client.hdel(self.STATUS, process)
            else:
                value = json.dumps({**status, "expires_at": time.time() + ttl})
                self.client.hset(self.STATUS, process, value)

    def reports(self) -> dict[str, dict[str, Any]]:
        with mapped(self.url, "read failover status"):
            everything = self.client.hgetall(self.STATUS)
            now, live, expired = time.time(), {}, []
            for process, value in everything.items():
                status = json.loads(value)
                if status.pop("expires_at", 0) > now:
                    live[process.decode()] = status
                else:  # a process that stopped reporting: it died
                    expired.append(process)
            if expired:
                self.client.hdel(self.STATUS, *expired)
        return dict(sorted(live.items()))

    def claim(self, line: str, owner: str, seconds: float) -> bool:
        with mapped(self.url, f"claim spool {line}"):
            return bool(self._claim(keys=[self.CLAIM + line], args=[owner, int(seconds * 1000)]))

    def release(self, line: str, owner: str) -> None:
        with mapped(self.url, f"release spool {line}"):
            self._release(keys=[self.CLAIM + line], args=[owner])

    def close(self) -> None:
        self.client.close()
