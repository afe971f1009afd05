"""A process-wide budget on the memory that concurrent image loads may use at once.

`predict` reads images on two loader threads. Two 100-megapixel files that each need 1.7 GB
to decode were opened at the same time and the run died; with a budget, each load first
reserves its estimated bytes and waits while the others hold too much, so a folder of big
files runs in sequence instead. A load larger than the whole budget runs alone.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

LOAD_MEMORY_ENV = "CXRVIEWER_LOAD_MEMORY_MB"
DEFAULT_LOAD_MEMORY = 2 * 2**30


def env_positive(name: str, logger: logging.Logger = log, scale: float = 1.0) -> float | None:
    """$name as a positive number times `scale`; None where unset or invalid (warned on `logger`)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw) * scale
    except ValueError:
        value = 0.0
    if value > 0:
        return value
    logger.warning("ignoring invalid %s=%r", name, raw)
    return None


def env_megabytes(name: str, logger: logging.Logger = log) -> int | None:
    """Bytes from $name, a positive number of MB; None where unset or invalid (warned on `logger`)."""
    value = env_positive(name, logger, scale=2**20)
    return int(value) if value is not None and value >= 1 else None


def load_memory_limit() -> int:
    """Bytes all concurrent loads may use: $CXRVIEWER_LOAD_MEMORY_MB, else 2 GB (at most half the RAM)."""
    value = env_megabytes(LOAD_MEMORY_ENV)
    if value is not None:
        return value
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return DEFAULT_LOAD_MEMORY
    return max(min(DEFAULT_LOAD_MEMORY, physical // 2), 256 * 2**20)


class MemoryBudget:
    """A counting semaphore on bytes: `with budget.reserve(n):` waits until n bytes are free."""

    def __init__(self, total: int) -> None:
        self.total = max(int(total), 1)
        self._used = 0
        self._peak = 0
        self._condition = threading.Condition()

    @property
    def peak(self) -> int:
        """The most bytes ever reserved at once (for tests and the log)."""
        with self._condition:
            return self._peak

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[int]:
        """Hold `nbytes` (capped at the whole budget) for the duration of the block."""
        amount = min(max(int(nbytes), 0), self.total)
        with self._condition:
            self._condition.wait_for(lambda: self._used + amount <= self.total)
            self._used += amount
            self._peak = max(self._peak, self._used)
        try:
            yield amount
        finally:
            with self._condition:
                self._used -= amount
                self._condition.notify_all()
