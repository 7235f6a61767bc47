"""The shared dedupe store on the real Redis."""

from __future__ import annotations

import time
import uuid

import pytest

from interchange.adapters import BackendUnavailable
from tests.net import closed_port

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url):
    from interchange.adapters.redis import RedisDedupeStore

    return RedisDedupeStore(redis_url, ttl=60, namespace=f"it-seen-{uuid.uuid4().hex[:8]}")


def test_two_stores_on_one_redis_share_what_was_handled(store, redis_url):
    from interchange.adapters.redis import RedisDedupeStore

    other_process = RedisDedupeStore(redis_url, namespace=store.namespace)
    store.remember("orders|billing|m-1")
    assert other_process.seen("orders|billing|m-1")
    assert not other_process.seen("orders|billing|m-2")


def test_forget_clears_one_scope_even_with_glob_characters_in_its_name(store):
    store.remember("odd*[topic]?|billing|m-1")
    store.remember("odd*[topic]?|billing-eu|m-1")
    store.remember("oddXtopic]?|billing|m-1")
    store.forget("odd*[topic]?|billing")
    assert not store.seen("odd*[topic]?|billing|m-1")
    assert store.seen("odd*[topic]?|billing-eu|m-1")
    assert store.seen("oddXtopic]?|billing|m-1")


def test_a_remembered_id_expires_with_its_ttl(redis_url):
    from interchange.adapters.redis import RedisDedupeStore

    short = RedisDedupeStore(redis_url, ttl=0.05, namespace=f"it-ttl-{uuid.uuid4().hex[:8]}")
    short.remember("s|g|m")
    deadline = time.monotonic() + 5
    while short.seen("s|g|m") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not short.seen("s|g|m")


def test_an_unreachable_store_raises_a_typed_error():
    from interchange.adapters.redis import RedisDedupeStore

    port = closed_port()
    with pytest.raises(
        BackendUnavailable,
        match=f"Redis at redis://127.0.0.1:{port}/0 while trying to read the dedupe store",
    ):
        RedisDedupeStore(f"redis://127.0.0.1:{port}/0").seen("x")


def test_one_drainer_at_a_time_holds_a_spool_line(redis_url):
    from interchange.adapters.redis import RedisSpool

    line = f"commands:send:claim-{uuid.uuid4().hex[:8]}"
    first, second = RedisSpool(redis_url), RedisSpool(redis_url)
    try:
        assert first.claim(line, "drainer-a", 30)
        assert not second.claim(line, "drainer-b", 30)
        assert first.claim(line, "drainer-a", 30), "the holder renews"
        second.release(line, "drainer-b")  # not the holder: nothing happens
        assert not second.claim(line, "drainer-b", 30)
        first.release(line, "drainer-a")
        assert second.claim(line, "drainer-b", 30)
    finally:
        second.release(line, "drainer-b")
        first.close()
        second.close()


def test_spool_lines_come_from_an_index_kept_with_the_entries(redis_url):
    import redis

    from interchange.adapters.message import TransportMessage
    from interchange.adapters.redis import RedisSpool
    from interchange.adapters.redis.wire import to_fields

    line = f"commands:send:index-{uuid.uuid4().hex[:8]}"
    older = f"commands:send:older-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    # a line spooled by a version without the index: found once by a scan, then indexed
    client.xadd(RedisSpool.PREFIX + older, to_fields(TransportMessage(id="o-1", body=b"{}")))
    spool = RedisSpool(redis_url)
    try:
        spool.append(line, [TransportMessage(id=f"m-{n}", body=b"{}") for n in range(3)])
        assert {line, older} <= set(spool.lines())
        assert client.sismember(RedisSpool.LINES, older)
        entries = spool.head(line, 10)
        assert [message.id for _, message in entries] == ["m-0", "m-1", "m-2"]
        spool.remove(line, [spool_id for spool_id, _ in entries[:2]])
        assert line in spool.lines(), "one entry is left"
        spool.remove(line, [entries[2][0]])
        assert line not in spool.lines()
        assert not client.sismember(RedisSpool.LINES, line), "an emptied line leaves the index"
        assert not client.exists(RedisSpool.PREFIX + line)
    finally:
        client.delete(RedisSpool.PREFIX + older)
        client.srem(RedisSpool.LINES, older, line)
        spool.close()


def test_failover_status_reports_expire_and_can_be_withdrawn(redis_url):
    from interchange.adapters.redis import RedisSpool

    spool = RedisSpool(redis_url)
    live, gone, died = (f"host:{uuid.uuid4().hex[:6]}" for _ in range(3))
    try:
        spool.report(live, {"commands": {"circuit": "open"}}, ttl=30)
        spool.report(gone, {"commands": {"circuit": "closed"}}, ttl=30)
        spool.report(died, {"commands": {"circuit": "closed"}}, ttl=0.01)
        spool.report(gone, None, ttl=0)
        time.sleep(0.05)  # past the dead process's ttl
        reports = spool.reports()
        assert reports[live] == {"commands": {"circuit": "open"}}
        assert gone not in reports
        assert died not in reports
        assert not spool.client.hexists(RedisSpool.STATUS, died), "expired reports are deleted"
    finally:
        spool.report(live, None, ttl=0)
        spool.close()
