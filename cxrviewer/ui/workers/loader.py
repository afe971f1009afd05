"""Load images and scan folders off the GUI thread; the newest request wins.

Both run on `core.concurrency.LatestWinsExecutor` (one lane each, one worker thread each):
a queued request superseded by a newer one is skipped before it starts, a running one is told
(a decode process busy with it is stopped), and a result whose request is stale is dropped,
never shown. Risky files are decoded in a decode process with a time limit
(`core.decode_pool`); the display pyramid of a large image is built on the worker thread
(`core.pyramid`), so the GUI thread only windows a small ready array. What is left here is a
thin Qt bridge: results cross to the GUI thread as frozen objects through queued signals.

The DICOM tag listing of the shown file is read on the same thread right after its image
(a 20,000-element header takes a quarter of a second to list) and arrives as a frozen
`TagListing` through `tags_ready`; the image is never held back for it.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal

from cxrviewer.core.concurrency import LatestWinsExecutor, Outcome, Ticket
from cxrviewer.core.decode_pool import DecodeCancelled
from cxrviewer.core.errors import CxrError, printable_name
from cxrviewer.core.lru import LruCache
from cxrviewer.core.types import XrayImage

log = logging.getLogger(__name__)

CACHE_SIZE = 4
CACHE_BYTES = 1536 * 2**20   # four 100-megapixel images would be 1.6 GB of float32 pixels
LANE = "image"


@dataclass(frozen=True)
class TagListing:
    """Every DICOM element of one file as (tag, name, VR, value) rows, or why there are none."""

    path: str
    rows: tuple[tuple[str, str, str, str], ...]
    message: str = ""


def read_tag_listing(path: Path, cancelled: Callable[[], bool] | None = None) -> TagListing:
    """The tag browser's rows (a DICOM file's are listed in a decode process, see core.decode_pool)."""
    from cxrviewer.core.decode_pool import tag_rows_isolated

    try:
        return TagListing(str(path), tuple(tag_rows_isolated(path, pool="view", cancelled=cancelled)))
    except DecodeCancelled:
        raise
    except CxrError as exc:
        return TagListing(str(path), (), f"No DICOM tags: {getattr(exc, 'reason', str(exc))}")
    except MemoryError:
        return TagListing(str(path), (), "No DICOM tags: not enough memory to list them")
    except Exception as exc:   # a tag listing must never take the viewer down
        log.exception("listing the tags of %s failed", path)
        return TagListing(str(path), (), f"No DICOM tags: unexpected error ({type(exc).__name__})")


class _LoadBridge(QObject):
    """Re-emits the executor's results on the GUI thread (queued connections)."""

    finished = Signal(int, object)          # request id, XrayImage
    # The path travels as a Python object: a Qt str drops the lone surrogates of an undecodable
    # file name (b"bad\xff.png" arrived as "bad.png"), so Problems named a file that is not there.
    failed = Signal(int, object, str)       # request id, path (str), message
    tags = Signal(int, object)              # request id, TagListing


def load_for_display(path: Path, frame: int, cancelled: Callable[[], bool] | None = None) -> XrayImage:
    """Decode `path` (risky files in a decode process, with a deadline) and build its display
    pyramid, all on the calling (worker) thread; raises CxrError or DecodeCancelled."""
    from cxrviewer.core.decode_pool import load_image_isolated
    from cxrviewer.core.pyramid import prepare_display

    image = load_image_isolated(path, frame, pool="view", cancelled=cancelled)
    prepare_display(image)
    return image


def failure_message(path: Path, exc: BaseException) -> str:
    """The one line shown for a load that raised `exc` (never raises itself)."""
    if isinstance(exc, CxrError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"{printable_name(path.name)}: not enough memory to open this image"
    log.error("unexpected error loading %s", path, exc_info=exc)
    return f"{printable_name(path.name)}: unexpected error ({type(exc).__name__}: {exc})"


def _image_bytes(image: XrayImage) -> int:
    from cxrviewer.core.pyramid import pyramid_of

    pyramid = pyramid_of(image)
    return int(image.pixels.nbytes) + (pyramid.nbytes if pyramid is not None else 0)


class ImageLoader(QObject):
    """Asynchronous `load_image` with newest-wins semantics and a small LRU cache.

    One `LatestWinsExecutor` lane ("image") on one worker thread: a request supersedes the
    one before it (skipped if queued; if it is being decoded in a decode process, that process
    is stopped). Decoded images are kept in an `LruCache` (CACHE_SIZE images, CACHE_BYTES).
    """

    image_loaded = Signal(int, object)      # request id, XrayImage
    load_failed = Signal(int, object, str)  # request id, path (str, as os.fsdecode gave it), message
    tags_ready = Signal(int, object)        # request id, TagListing (after that request's image)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = _LoadBridge(self)
        queued = Qt.ConnectionType.QueuedConnection
        self._bridge.finished.connect(self._on_bridge_finished, queued)
        self._bridge.failed.connect(self._on_bridge_failed, queued)
        self._bridge.tags.connect(self._on_bridge_tags, queued)
        self._executor = LatestWinsExecutor(1, name="cxrviewer-loader", on_stale=self._on_stale_outcome)
        self._images: LruCache[tuple[str, int], XrayImage] = LruCache(CACHE_SIZE, CACHE_BYTES, _image_bytes)
        self._tags: LruCache[str, TagListing] = LruCache(CACHE_SIZE)
        self._ids = itertools.count(1)
        self._latest = 0                      # GUI thread only
        self._closed = False

    def request(self, path: str | Path, frame: int = 0) -> int:
        """Ask for `path` (frame `frame`); returns the request id. Older requests go stale."""
        path = Path(path)
        request_id = next(self._ids)
        self._latest = request_id
        key = (str(path), frame)
        cached = self._images.get(key)
        if cached is not None:
            self._executor.cancel(LANE)
            # Delivered through the event loop (queued) too, so callers see one code path.
            self._bridge.finished.emit(request_id, cached)
            listing = self._tags.get(str(path))
            if listing is not None:
                self._bridge.tags.emit(request_id, listing)
            else:
                self._submit(request_id, path, frame, tags_only=True)
            return request_id
        self._submit(request_id, path, frame, tags_only=False)
        return request_id

    def is_current(self, request_id: int) -> bool:
        return request_id == self._latest

    def cancel(self) -> None:
        """Make every outstanding request stale (a decode process busy with one is stopped)."""
        self._latest = next(self._ids)
        self._executor.cancel(LANE)

    def clear_cache(self) -> None:
        self._images.clear()
        self._tags.clear()

    def wait(self, msecs: int = 30000) -> bool:
        return self._executor.wait_idle(msecs / 1000.0)

    def shutdown(self) -> None:
        self._closed = True
        self.cancel()
        self._executor.shutdown(10.0)

    def _submit(self, request_id: int, path: Path, frame: int, tags_only: bool) -> None:
        if self._closed:
            return   # the window is closing: nothing more is loaded
        bridge = self._bridge

        def job(ticket: Ticket) -> TagListing | None:
            if not tags_only:
                try:
                    image = load_for_display(path, frame, ticket.cancelled)
                except DecodeCancelled:
                    return None
                except BaseException as exc:  # noqa: BLE001 - never let a bad file take the application down
                    if not isinstance(exc, Exception):
                        raise
                    if not ticket.cancelled():
                        bridge.failed.emit(request_id, str(path), failure_message(path, exc))
                    return None
                self._images.put((str(path), frame), image)   # cached even when superseded meanwhile
                if ticket.cancelled():
                    return None
                bridge.finished.emit(request_id, image)
            if ticket.cancelled():
                return None
            try:
                listing = read_tag_listing(path, ticket.cancelled)
            except DecodeCancelled:
                return None
            self._tags.put(listing.path, listing)
            return listing

        def delivered(outcome: Outcome) -> None:
            if isinstance(outcome.value, TagListing):
                bridge.tags.emit(request_id, outcome.value)

        self._executor.submit(LANE, job, on_done=delivered)

    def _on_stale_outcome(self, outcome: Outcome) -> None:
        if isinstance(outcome.value, TagListing):
            self._tags.put(outcome.value.path, outcome.value)

    def _on_bridge_finished(self, request_id: int, image: XrayImage) -> None:
        if self.is_current(request_id):
            self.image_loaded.emit(request_id, image)

    def _on_bridge_tags(self, request_id: int, listing: TagListing) -> None:
        if self.is_current(request_id):
            self.tags_ready.emit(request_id, listing)

    def _on_bridge_failed(self, request_id: int, path: str, message: str) -> None:
        if self.is_current(request_id):
            self.load_failed.emit(request_id, path, message)


# ------------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class ScanResult:
    """What opening some paths found: image files in browser order, grouped for the tree, and
    the files that cannot be opened with why (from their header: `core.io.header_problem`)."""

    request_id: int
    requested: tuple[Path, ...]
    entries: tuple[object, ...]          # BrowserEntry, in display order
    error: str = ""
    problems: tuple[tuple[Path, str], ...] = ()   # (path, one-line message), in display order


def scan_paths(paths: Sequence[Path], cancelled: Callable[[], bool] | None = None
               ) -> tuple[list[object], list[tuple[Path, str]]]:
    """Expand folders (recursively), group the files by patient/study/series, and find the files
    whose stat or header already says they cannot be opened (`core.io.header_problem`).

    The header reading runs in a child process (`core.decode_pool.scan_headers`), so pathological
    headers never hold this process's interpreter lock; if that fails or overruns its deadline,
    the files are listed flat and only the file-system checks are made here.
    """
    from cxrviewer.core.decode_pool import DecodeCancelled, scan_headers
    from cxrviewer.core.io import find_images
    from cxrviewer.ui.docks.study_browser import BrowserEntry, entries_from_tree

    # A link that cannot be followed (a loop, a missing target) stays listed: opening it puts
    # the reason in Problems, where dropping it here left no trace.
    files = [f for f in find_images(paths) if f.exists() or f.is_symlink()]
    if not files:
        return [], []
    try:
        tree, problems, left_out = scan_headers(files, cancelled=cancelled)
        # A file whose header hung is listed (under "Files") so that its problem can be visited.
        return list(entries_from_tree(tree)) + [BrowserEntry(path=f, label=f.name) for f in left_out], problems
    except DecodeCancelled:
        return [], []
    except Exception:
        log.exception("reading the headers of %d files failed; listing them flat", len(files))
    return [BrowserEntry(path=f, label=f.name) for f in files], file_problems(files)


def file_problems(files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, message) for the files the file system alone refuses (no reading)."""
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io._common import max_file_bytes, regular_file_stat

    found: list[tuple[Path, str]] = []
    for path in files:
        try:
            regular_file_stat(path, max_file_bytes())
        except ImageLoadError as exc:
            found.append((path, str(exc)))
    return found


class _ScanBridge(QObject):
    finished = Signal(object)             # ScanResult


class FolderScanner(QObject):
    """Runs `scan_paths` on its own worker thread (never behind a decode)."""

    scanned = Signal(object)              # ScanResult of the newest request

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bridge = _ScanBridge(self)
        self._bridge.finished.connect(self._on_bridge_finished, Qt.ConnectionType.QueuedConnection)
        self._executor = LatestWinsExecutor(1, name="cxrviewer-scanner")
        self._ids = itertools.count(1)
        self._latest = 0
        self._closed = False

    def request(self, paths: Sequence[Path]) -> int:
        request_id = next(self._ids)
        self._latest = request_id
        if self._closed:
            return request_id
        requested = tuple(Path(p) for p in paths)
        bridge = self._bridge

        def job(ticket: Ticket) -> None:
            try:
                entries, problems = scan_paths(requested, ticket.cancelled)
            except Exception as exc:   # a broken folder must not take the viewer down
                log.exception("scanning %s failed", requested)
                result = ScanResult(request_id, requested, (), f"cannot list the files ({exc})")
            else:
                result = ScanResult(request_id, requested, tuple(entries), problems=tuple(problems))
            if not ticket.cancelled():
                bridge.finished.emit(result)

        self._executor.submit("scan", job)
        return request_id

    def is_current(self, request_id: int) -> bool:
        return request_id == self._latest

    def shutdown(self) -> None:
        self._closed = True
        self._latest = next(self._ids)
        self._executor.shutdown(10.0)

    def _on_bridge_finished(self, result: ScanResult) -> None:
        if self.is_current(result.request_id):
            self.scanned.emit(result)
