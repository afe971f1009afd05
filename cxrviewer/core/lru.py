"""One least-recently-used cache with an item budget, a byte budget, or both (Qt-free, thread-safe).

Used for decoded images (a few, bounded by bytes: one 100-megapixel image is 400 MB), their
tag listings and the study browser's thumbnails (thousands, bounded by count).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LruCache(Generic[K, V]):
    """`put(key, value)` evicts the least recently used entries until both budgets hold.

    `size_of(value)` gives a value's bytes (default 0: only `max_items` counts). A value larger
    than the whole byte budget is not stored at all, rather than emptying the cache for it.
    `get` counts as a use; `peek` does not.
    """

    def __init__(self, max_items: int | None = None, max_bytes: int | None = None,
                 size_of: Callable[[V], int] | None = None) -> None:
        if max_items is None and max_bytes is None:
            raise ValueError("an LruCache needs max_items or max_bytes")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size_of = size_of or (lambda _value: 0)
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            entry = self._entries.get(key, _MISSING)
            if entry is _MISSING:
                return default
            self._entries.move_to_end(key)
            return entry[0]   # type: ignore[index]

    def peek(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            return default if entry is None else entry[0]

    def put(self, key: K, value: V) -> bool:
        """Store `value` (the newest entry); False when it alone exceeds the byte budget."""
        size = max(int(self._size_of(value)), 0)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if self.max_bytes is not None and size > self.max_bytes:
                return False
            self._entries[key] = (value, size)
            self._bytes += size
            while self._entries and (
                (self.max_items is not None and len(self._entries) > self.max_items)
                or (self.max_bytes is not None and self._bytes > self.max_bytes)
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
            return True

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return default
            self._bytes -= entry[1]
            return entry[0]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def keys(self) -> list[K]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
