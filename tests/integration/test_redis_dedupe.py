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
