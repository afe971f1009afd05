"""core/lru.py: the one LRU cache (item and byte budgets)."""
from __future__ import annotations

import threading

import pytest

from cxrviewer.core.lru import LruCache


def test_item_budget_evicts_the_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(max_items=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.keys() == ["a", "c"]


def test_peek_does_not_count_as_a_use() -> None:
    cache: LruCache[str, int] = LruCache(max_items=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.peek("a") == 1
    cache.put("c", 3)
    assert "a" not in cache and cache.keys() == ["b", "c"]


def test_byte_budget_counts_sizes_and_replacing_a_key_does_not_double_count() -> None:
    cache: LruCache[str, bytes] = LruCache(max_bytes=10, size_of=len)
    cache.put("a", b"12345")
    cache.put("a", b"123")
    assert cache.total_bytes == 3
    cache.put("b", b"1234567")
    assert cache.total_bytes == 10 and len(cache) == 2
    cache.put("c", b"1")
    assert cache.keys() == ["b", "c"] and cache.total_bytes == 8


def test_a_value_larger_than_the_budget_is_refused_without_emptying_the_cache() -> None:
    cache: LruCache[str, bytes] = LruCache(max_bytes=10, size_of=len)
    cache.put("a", b"12")
    assert cache.put("huge", b"x" * 11) is False
    assert cache.keys() == ["a"] and "huge" not in cache


def test_both_budgets_hold_at_once() -> None:
    cache: LruCache[int, bytes] = LruCache(max_items=3, max_bytes=100, size_of=len)
    for key in range(5):
        cache.put(key, b"x")
    assert cache.keys() == [2, 3, 4]
    cache.put(9, b"y" * 99)     # 4 items > 3 evicts key 2; 101 bytes > 100 evicts key 3
    assert cache.keys() == [4, 9] and cache.total_bytes == 100


def test_pop_clear_and_default() -> None:
    cache: LruCache[str, int] = LruCache(max_items=4, max_bytes=100, size_of=lambda v: v)
    cache.put("a", 7)
    assert cache.get("missing", -1) == -1
    assert cache.pop("a") == 7 and cache.total_bytes == 0
    cache.put("b", 5)
    cache.clear()
    assert len(cache) == 0 and cache.total_bytes == 0


def test_none_is_a_storable_value() -> None:
    cache: LruCache[str, object] = LruCache(max_items=2)
    cache.put("unreadable", None)
    assert "unreadable" in cache and cache.get("unreadable", "default") is None


def test_a_cache_needs_a_budget() -> None:
    with pytest.raises(ValueError):
        LruCache()


def test_concurrent_puts_keep_the_budget() -> None:
    cache: LruCache[int, bytes] = LruCache(max_bytes=1000, size_of=len)

    def fill(offset: int) -> None:
        for key in range(offset, offset + 2000):
            cache.put(key, b"x" * 10)

    threads = [threading.Thread(target=fill, args=(i * 10_000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.total_bytes == 1000 and len(cache) == 100
