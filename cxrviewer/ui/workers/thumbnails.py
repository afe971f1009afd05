"""Study-browser thumbnails, decoded on their own low-priority thread and cached by file.

Risky files (compressed DICOM, TIFF, huge rasters) are decoded in the "background" decode
process (`core.decode_pool`), which returns only the small picture, under the same time limit
as the viewer's own decode.

Only what the tree shows is asked for (the visible rows, again after scrolling), so
opening 5,000 files does not queue 5,000 decodes. A new study makes everything queued
stale. Images the viewer has already loaded are offered directly and cost no decode.
Results cross threads as QImages (safe off the GUI thread); icons are made on the GUI thread.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage

from cxrviewer.core.concurrency import LatestWinsExecutor, Ticket
from cxrviewer.core.imaging import thumbnail
from cxrviewer.core.lru import LruCache
from cxrviewer.core.types import XrayImage

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 64
CACHE_SIZE = 2000


_CANCELLED = "cancelled"


def gray_qimage(gray: np.ndarray) -> QImage:
    """A QImage owning a copy of a 2-D uint8 array (safe to hand across threads)."""
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    height, width = gray.shape
    return QImage(gray.tobytes(), width, height, width, QImage.Format.Format_Grayscale8).copy()


def thumbnail_qimage(image: XrayImage, side: int = THUMBNAIL_SIDE) -> QImage:
    return gray_qimage(thumbnail(image, side))


def thumbnail_picture(path: Path, side: int = THUMBNAIL_SIDE,
                      cancelled: Callable[[], bool] | None = None) -> QImage | None:
    """The thumbnail of `path` (risky files decoded in a decode process), None when unreadable."""
    from cxrviewer.core.decode_pool import DecodeCancelled, thumbnail_isolated

    try:
        return gray_qimage(thumbnail_isolated(path, side, pool="background", cancelled=cancelled))
    except DecodeCancelled:
        raise
    except Exception:   # an unreadable file simply has no thumbnail; the loader reports it
        log.debug("no thumbnail for %s", path, exc_info=True)
        return None


def _lower_thread_priority() -> None:
    """Thumbnails yield the CPU to the shown image's decode (Linux: per-thread nice)."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class _Bridge(QObject):
    done = Signal(str, object)           # path, QImage | None (unreadable)


class ThumbnailLoader(QObject):
    """`request(path)` → `ready(path, QImage)` once decoded; `cached(path)` for what is known.

    One `LatestWinsExecutor` lane per file on one low-priority worker thread; `reset()` (a new
    study) cancels everything queued. Pictures are kept in an `LruCache` of CACHE_SIZE files,
    unreadable ones as None so they are not asked for again.
    """

    ready = Signal(str, QImage)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = _Bridge(self)
        self._bridge.done.connect(self._on_bridge_done, Qt.ConnectionType.QueuedConnection)
        self._executor = LatestWinsExecutor(1, name="cxrviewer-thumbnails", thread_setup=_lower_thread_priority)
        self._cache: LruCache[str, QImage | None] = LruCache(max_items=CACHE_SIZE)
        self._pending: set[str] = set()
        self._closed = False

    def reset(self) -> None:
        """A new study: drop what is queued (the cache stays, keyed by file)."""
        self._executor.cancel_all()
        self._pending.clear()

    def cached(self, path: Path) -> QImage | None:
        return self._cache.peek(str(path))

    def request(self, path: Path) -> None:
        key = str(path)
        if self._closed or key in self._cache or key in self._pending:
            return
        self._pending.add(key)
        bridge = self._bridge
        target = Path(path)

        def job(ticket: Ticket) -> None:
            try:
                bridge.done.emit(key, thumbnail_picture(target, cancelled=ticket.cancelled))
            except Exception:  # noqa: BLE001 - DecodeCancelled: a new study; asked again if shown
                bridge.done.emit(key, _CANCELLED)

        self._executor.submit(key, job)

    def offer(self, image: XrayImage) -> None:
        """An image the viewer loaded anyway: its thumbnail without a second decode."""
        key = str(image.path)
        if self._cache.peek(key) is None and image.frame_index == 0:
            self._store(key, thumbnail_qimage(image))

    def shutdown(self) -> None:
        self._closed = True   # a late scroll or resize timer asks for nothing more
        self.reset()
        self._executor.shutdown(10.0)

    def _on_bridge_done(self, path: str, picture: object) -> None:
        self._pending.discard(path)   # even from an older study, it is a true picture of that file
        if isinstance(picture, QImage):
            self._store(path, picture)
        elif picture is None:
            self._cache.put(path, None)   # unreadable: not asked again

    def _store(self, path: str, picture: QImage) -> None:
        self._cache.put(path, picture)
        self.ready.emit(path, picture)
