"""Load images and scan folders off the GUI thread; the newest request wins.

One worker thread (a private QThreadPool with a single thread) runs `load_image`. Every
request carries an id; a queued request superseded by a newer one is skipped before it
starts, and a finished result whose id is stale is dropped, never shown. Results cross the
thread boundary as frozen `XrayImage`s through queued signals.

The DICOM tag listing of the shown file is read on the same thread right after its image
(a 20,000-element header takes a quarter of a second to list) and arrives as a frozen
`TagListing` through `tags_ready`; the image is never held back for it.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from cxrviewer.core.errors import CxrError, printable_name
from cxrviewer.core.types import XrayImage

log = logging.getLogger(__name__)

CACHE_SIZE = 4


@dataclass(frozen=True)
class TagListing:
    """Every DICOM element of one file as (tag, name, VR, value) rows, or why there are none."""

    path: str
    rows: tuple[tuple[str, str, str, str], ...]
    message: str = ""


def read_tag_listing(path: Path) -> TagListing:
    from cxrviewer.core.io import dicom_tag_rows

    try:
        return TagListing(str(path), tuple(dicom_tag_rows(path)))
    except CxrError as exc:
        return TagListing(str(path), (), f"No DICOM tags: {getattr(exc, 'reason', str(exc))}")
    except MemoryError:
        return TagListing(str(path), (), "No DICOM tags: not enough memory to list them")
    except Exception as exc:   # a tag listing must never take the viewer down
        log.exception("listing the tags of %s failed", path)
        return TagListing(str(path), (), f"No DICOM tags: unexpected error ({type(exc).__name__})")


class _LoadSignals(QObject):
    finished = Signal(int, object)          # request id, XrayImage
    # The path travels as a Python object: a Qt str drops the lone surrogates of an undecodable
    # file name (b"bad\xff.png" arrived as "bad.png"), so Problems named a file that is not there.
    failed = Signal(int, object, str)       # request id, path (str), message
    tags = Signal(int, object)              # request id, TagListing


class _LoadTask(QRunnable):
    """Decode one image, then list its tags; `tags_only` when the image came from the cache."""

    def __init__(self, loader: ImageLoader, request_id: int, path: Path, frame: int, tags_only: bool = False) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._loader = loader
        self._signals = loader._signals
        self._request_id = request_id
        self._path = path
        self._frame = frame
        self._tags_only = tags_only

    @Slot()
    def run(self) -> None:
        if not self._loader.is_current(self._request_id):
            return   # superseded while queued
        if self._tags_only or self._load():
            if self._loader.is_current(self._request_id):
                self._signals.tags.emit(self._request_id, read_tag_listing(self._path))

    def _load(self) -> bool:
        try:
            from cxrviewer.core.io import load_image

            image = load_image(self._path, frame=self._frame)
        except CxrError as exc:
            self._signals.failed.emit(self._request_id, str(self._path), str(exc))
        except MemoryError:
            self._signals.failed.emit(
                self._request_id, str(self._path),
                f"{printable_name(self._path.name)}: not enough memory to open this image",
            )
        except Exception as exc:   # never let a bad file take the application down
            log.exception("unexpected error loading %s", self._path)
            self._signals.failed.emit(
                self._request_id, str(self._path),
                f"{printable_name(self._path.name)}: unexpected error ({type(exc).__name__}: {exc})",
            )
        else:
            self._signals.finished.emit(self._request_id, image)
            return True
        return False


class ImageLoader(QObject):
    """Asynchronous `load_image` with newest-wins semantics and a small LRU cache."""

    image_loaded = Signal(int, object)      # request id, XrayImage
    load_failed = Signal(int, object, str)  # request id, path (str, as os.fsdecode gave it), message
    tags_ready = Signal(int, object)        # request id, TagListing (after that request's image)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _LoadSignals(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._signals.finished.connect(self._on_task_finished, queued)
        self._signals.failed.connect(self._on_task_failed, queued)
        self._signals.tags.connect(self._on_task_tags, queued)
        self._lock = threading.Lock()
        self._latest = 0
        self._cache: OrderedDict[tuple[str, int], XrayImage] = OrderedDict()
        self._pending: dict[int, tuple[str, int]] = {}
        self._tags: OrderedDict[str, TagListing] = OrderedDict()

    def request(self, path: str | Path, frame: int = 0) -> int:
        """Ask for `path` (frame `frame`); returns the request id. Older requests go stale."""
        path = Path(path)
        with self._lock:
            self._latest += 1
            request_id = self._latest
        key = (str(path), frame)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            # Delivered through the event loop (queued) too, so callers see one code path.
            self._signals.finished.emit(request_id, cached)
            listing = self._tags.get(str(path))
            if listing is not None:
                self._signals.tags.emit(request_id, listing)
            else:
                self._pool.start(_LoadTask(self, request_id, path, frame, tags_only=True))
            return request_id
        for stale in [rid for rid in self._pending if rid < request_id - 16]:
            del self._pending[stale]   # skipped tasks never report back
        self._pending[request_id] = key
        self._pool.start(_LoadTask(self, request_id, path, frame))
        return request_id

    def is_current(self, request_id: int) -> bool:
        with self._lock:
            return request_id == self._latest

    def cancel(self) -> None:
        """Make every outstanding request stale."""
        with self._lock:
            self._latest += 1

    def clear_cache(self) -> None:
        self._cache.clear()
        self._tags.clear()

    def wait(self, msecs: int = 30000) -> bool:
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        self.cancel()
        self._pool.clear()
        self._pool.waitForDone(10000)

    def _on_task_finished(self, request_id: int, image: XrayImage) -> None:
        key = self._pending.pop(request_id, None)
        if key is not None:
            self._cache[key] = image
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        if self.is_current(request_id):
            self.image_loaded.emit(request_id, image)

    def _on_task_tags(self, request_id: int, listing: TagListing) -> None:
        self._tags[listing.path] = listing
        self._tags.move_to_end(listing.path)
        while len(self._tags) > CACHE_SIZE:
            self._tags.popitem(last=False)
        if self.is_current(request_id):
            self.tags_ready.emit(request_id, listing)

    def _on_task_failed(self, request_id: int, path: str, message: str) -> None:
        self._pending.pop(request_id, None)
        if self.is_current(request_id):
            self.load_failed.emit(request_id, path, message)


# ------------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class ScanResult:
    """What opening some paths found: image files in browser order, grouped for the tree."""

    request_id: int
    requested: tuple[Path, ...]
    entries: tuple[object, ...]          # BrowserEntry, in display order
    error: str = ""


class _ScanSignals(QObject):
    finished = Signal(object)             # ScanResult


class _ScanTask(QRunnable):
    def __init__(self, scanner: FolderScanner, request_id: int, paths: tuple[Path, ...]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._scanner = scanner
        self._signals = scanner._signals
        self._request_id = request_id
        self._paths = paths

    @Slot()
    def run(self) -> None:
        if not self._scanner.is_current(self._request_id):
            return
        try:
            entries = tuple(scan_paths(self._paths))
        except Exception as exc:   # a broken folder must not take the viewer down
            log.exception("scanning %s failed", self._paths)
            result = ScanResult(self._request_id, self._paths, (), f"cannot list the files ({exc})")
        else:
            result = ScanResult(self._request_id, self._paths, entries)
        self._signals.finished.emit(result)


def scan_paths(paths: Sequence[Path]) -> list[object]:
    """Expand folders (recursively) and group the files by patient/study/series.

    Grouping reads DICOM headers; if it fails, the files are listed flat instead.
    """
    from cxrviewer.core.io import find_images
    from cxrviewer.ui.study_browser import BrowserEntry, entries_from_paths

    # A link that cannot be followed (a loop, a missing target) stays listed: opening it puts
    # the reason in Problems, where dropping it here left no trace.
    files = [f for f in find_images(paths) if f.exists() or f.is_symlink()]
    if not files:
        return []
    try:
        return list(entries_from_paths(files))
    except Exception:
        log.exception("grouping %d files failed; listing them flat", len(files))
        return [BrowserEntry(path=f, label=f.name) for f in files]


class FolderScanner(QObject):
    """Runs `scan_paths` on its own worker thread (so it never queues behind a decode)."""

    scanned = Signal(object)              # ScanResult of the newest request

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _ScanSignals(self)
        self._signals.finished.connect(self._on_task_finished, Qt.ConnectionType.QueuedConnection)
        self._lock = threading.Lock()
        self._latest = 0

    def request(self, paths: Sequence[Path]) -> int:
        with self._lock:
            self._latest += 1
            request_id = self._latest
        self._pool.start(_ScanTask(self, request_id, tuple(Path(p) for p in paths)))
        return request_id

    def is_current(self, request_id: int) -> bool:
        with self._lock:
            return request_id == self._latest

    def shutdown(self) -> None:
        with self._lock:
            self._latest += 1
        self._pool.clear()
        self._pool.waitForDone(10000)

    def _on_task_finished(self, result: ScanResult) -> None:
        if self.is_current(result.request_id):
            self.scanned.emit(result)
