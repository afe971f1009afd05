"""Study-browser thumbnails, decoded on their own low-priority thread and cached by file.

Only what the tree shows is asked for (the visible rows, again after scrolling), so
opening 5,000 files does not queue 5,000 decodes. A new study makes everything queued
stale. Images the viewer has already loaded are offered directly and cost no decode.
Results cross threads as QImages (safe off the GUI thread); icons are made on the GUI thread.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from cxrviewer.core.imaging import thumbnail
from cxrviewer.core.types import XrayImage

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 64
CACHE_SIZE = 2000


def thumbnail_qimage(image: XrayImage, side: int = THUMBNAIL_SIDE) -> QImage:
    gray = thumbnail(image, side)
    height, width = gray.shape
    return QImage(gray.tobytes(), width, height, width, QImage.Format.Format_Grayscale8).copy()


class _Signals(QObject):
    done = Signal(str, object)           # path, QImage | None (unreadable)


class _ThumbnailTask(QRunnable):
    def __init__(self, owner: ThumbnailLoader, generation: int, path: Path) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._owner = owner
        self._signals = owner._signals
        self._generation = generation
        self._path = path

    @Slot()
    def run(self) -> None:
        if not self._owner.is_current(self._generation):
            return
        QThread.currentThread().setPriority(QThread.Priority.LowestPriority)
        try:
            from cxrviewer.core.io import load_image

            picture: QImage | None = thumbnail_qimage(load_image(self._path))
        except Exception:   # an unreadable file simply has no thumbnail; the loader reports it
            log.debug("no thumbnail for %s", self._path, exc_info=True)
            picture = None
        self._signals.done.emit(str(self._path), picture)


class ThumbnailLoader(QObject):
    """`request(path)` → `ready(path, QImage)` once decoded; `cached(path)` for what is known."""

    ready = Signal(str, QImage)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._lock = threading.Lock()
        self._generation = 0
        self._cache: OrderedDict[str, QImage | None] = OrderedDict()
        self._pending: set[str] = set()

    def is_current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def reset(self) -> None:
        """A new study: drop what is queued (the cache stays, keyed by file)."""
        with self._lock:
            self._generation += 1
        self._pool.clear()
        self._pending.clear()

    def cached(self, path: Path) -> QImage | None:
        return self._cache.get(str(path))

    def request(self, path: Path) -> None:
        key = str(path)
        if key in self._cache or key in self._pending:
            return
        self._pending.add(key)
        with self._lock:
            generation = self._generation
        self._pool.start(_ThumbnailTask(self, generation, Path(path)))

    def offer(self, image: XrayImage) -> None:
        """An image the viewer loaded anyway: its thumbnail without a second decode."""
        key = str(image.path)
        if self._cache.get(key) is None and image.frame_index == 0:
            self._store(key, thumbnail_qimage(image))

    def shutdown(self) -> None:
        self.reset()
        self._pool.waitForDone(10000)

    def _on_done(self, path: str, picture: object) -> None:
        self._pending.discard(path)   # even from an older study, it is a true picture of that file
        if isinstance(picture, QImage):
            self._store(path, picture)
        else:
            self._cache[path] = None   # unreadable: not asked again

    def _store(self, path: str, picture: QImage) -> None:
        self._cache[path] = picture
        self._cache.move_to_end(path)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self.ready.emit(path, picture)

