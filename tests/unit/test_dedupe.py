"""The in-memory dedupe store: remembers, expires, stays bounded."""

import time

from interchange import MemoryDedupeStore


def test_remembered_ids_are_seen_and_others_are_not():
    store = MemoryDedupeStore()
    store.remember("a")
    assert store.seen("a")
    assert not store.seen("b")


def test_ids_expire_after_their_ttl():
    store = MemoryDedupeStore(ttl=0.01)
    store.remember("a")
    deadline = time.monotonic() + 2
    while store.seen("a") and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not store.seen("a")


def test_the_store_keeps_at_most_max_entries_dropping_the_oldest():
    store = MemoryDedupeStore(max_entries=3)
    for key in "abcd":
        store.remember(key)
    assert [store.seen(k) for k in "abcd"] == [False, True, True, True]


def test_forgetting_a_scope_forgets_only_that_scope():
    store = MemoryDedupeStore()
    store.remember("orders|billing|1")
    store.remember("orders|billing-eu|1")
    store.forget("orders|billing")
    assert not store.seen("orders|billing|1")
    assert store.seen("orders|billing-eu|1")
