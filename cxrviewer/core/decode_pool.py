"""Risky decodes run in child processes that can be abandoned: a hard time limit per image.

A decoder plugin that loops (a JPEG 2000 box walk that never advances, an RLE segment that
expands for ever) cannot be stopped from a thread. So compressed DICOM pixel data (JPEG 2000,
JPEG-LS, JPEG, RLE, deflate), TIFF and rasters over `INLINE_MAX_PIXELS` are decoded by a small
pool of *spawned* processes (`multiprocessing` spawn context: nothing forked from a process that
runs Qt; the child imports `cxrviewer.core.io` and numpy/pydicom/OpenCV/Pillow only, never Qt or
TensorFlow). Each decode has a deadline (`$CXRVIEWER_DECODE_SECONDS`, default 20 s) and each
child an address-space limit (`$CXRVIEWER_DECODE_MEMORY_MB` above its start-up size, default
4 GB); a child past its deadline is killed and replaced, and the caller gets one line:
"<file>: decoding took longer than 20 s and was stopped".

PNG/JPEG/BMP files of at most 16 megapixels stay in the calling thread: OpenCV decodes them
without holding the interpreter lock and cannot loop on them, and a fresh child costs
0.5–1.5 s of imports. Every DICOM file goes to a child (see `needs_isolation`).

`load_image_isolated` / `thumbnail_isolated` decide per file from its header and are what the
GUI loader, the thumbnails and `predict` call; `scan_headers` runs a folder's header scan
(grouping and Problems) in a child too. The shared pools (`shared_pool(name)`) are created on
first use, per purpose, so thumbnails and scans never queue in front of the shown image.

A decode superseded by a newer request may finish within CANCEL_GRACE_S (its image is still
cached); after that its child is stopped and replaced.

Children log into the caller's log file but only append to it: the calling process alone
rotates it (`core.logs.rotate_if_due` after each request), so two processes never rotate it.
"""
from __future__ import annotations

import atexit
import dataclasses
import importlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.logs import rotate_if_due, setup_logging
from cxrviewer.core.memory import env_megabytes, env_positive
from cxrviewer.core.types import XrayImage, readonly

log = logging.getLogger(__name__)

ENV_PREFIX = "CXRVIEWER_"
DECODE_SECONDS_ENV = "CXRVIEWER_DECODE_SECONDS"
DECODE_MEMORY_ENV = "CXRVIEWER_DECODE_MEMORY_MB"
DEFAULT_DECODE_SECONDS = 20.0
DEFAULT_CHILD_MEMORY = 4 * 2**30
STARTUP_SECONDS = 120.0          # a fresh child's imports on a loaded machine, not counted in the deadline
INLINE_MAX_PIXELS = 16_000_000   # larger rasters (and every TIFF) are decoded in a child
INLINE_MAX_BYTES = 16 * 2**20    # so are larger raster files, whatever their header says
POLL_SECONDS = 0.05
CANCEL_GRACE_S = 1.0             # a superseded decode may finish within this; after it, its child is stopped
HEADER_BYTES = 2**20
_INLINE_RASTERS = ("PNG", "JPEG", "BMP")


class ScanTimeout(Exception):
    """The header of file `index` of a folder scan took longer than the deadline (its child was stopped)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class DecodeCancelled(Exception):
    """The caller gave up on this decode (a newer request superseded it); its child was stopped."""


def decode_seconds() -> float:
    """The per-image deadline: $CXRVIEWER_DECODE_SECONDS, else 20 s."""
    value = env_positive(DECODE_SECONDS_ENV, log)
    return value if value is not None else DEFAULT_DECODE_SECONDS


def child_memory_bytes() -> int:
    """Address space a child may add to its start-up size: $CXRVIEWER_DECODE_MEMORY_MB, else 4 GB."""
    value = env_megabytes(DECODE_MEMORY_ENV, log)
    return value if value is not None else DEFAULT_CHILD_MEMORY


def timeout_message(seconds: float) -> str:
    return f"decoding took longer than {seconds:g} s and was stopped"


# ------------------------------------------------------------------------------ the child
def _limit_address_space(extra: int) -> None:
    """RLIMIT_AS = this process's current size + `extra`: a decoder that allocates without bound
    gets a MemoryError (reported as "not enough memory") instead of taking the machine."""
    try:
        import resource

        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = size + extra
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        if soft == resource.RLIM_INFINITY or wanted < soft:
            resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    except (ImportError, OSError, StopIteration, ValueError):
        log.debug("no address-space limit in the decode child", exc_info=True)


def settings_environment() -> dict[str, str]:
    """The $CXRVIEWER_* settings (pixel limit, memory, …) as the caller sees them now; sent with
    each request, so a child started earlier decides with the same limits as the caller."""
    return {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIX)}


def _apply_environment(environment: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in environment]:
        del os.environ[key]
    os.environ.update(environment)


def _log_to_the_callers_file() -> None:
    """The child logs (and Python warnings: a damaged DICOM's, named by core.io.dicom) into the
    caller's log file ($CXRVIEWER_LOG_DIR as sent with the request), never on stderr; a no-op
    while that folder is unchanged. The child only appends: the caller alone rotates the file
    (`core.logs`: a child of multiprocessing gets an append-only handler)."""
    try:
        setup_logging()
    except Exception:  # noqa: BLE001 - no log file must never stop a decode
        pass


RAW_CHUNK = 2**22


def _write_raw(conn: Connection, data: memoryview) -> None:
    """The pixels as raw bytes after their header message: the parent reads them straight into
    its array (`_read_raw`), never as one 400 MB bytes object copied while holding the GIL."""
    if not hasattr(os, "readv"):
        conn.send_bytes(data)
        return
    fd = conn.fileno()
    sent = 0
    while sent < len(data):
        sent += os.write(fd, data[sent:sent + RAW_CHUNK])


def _child_main(conn: Connection, setup: str | None, memory: int, nice: int = 0) -> None:
    """The child's loop: ("load", path, frame) / ("thumbnail", path, side) / ("tags", path) /
    ("scan", paths) / ("ping",) / ("stop",); each request ends with the caller's settings."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C belongs to the parent
    from cxrviewer.core import imaging
    from cxrviewer.core import io as core_io

    _limit_address_space(memory)
    if nice > 0 and hasattr(os, "nice"):
        try:   # the GUI process keeps the CPU it needs to repaint while a big image decodes
            os.nice(nice)
        except OSError:
            pass
    if setup:   # tests only: a hook named by the test that built this pool
        module, _, name = setup.partition(":")
        getattr(importlib.import_module(module), name)()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "stop":
            return
        environment, message = message[-1], message[:-1]
        _apply_environment(environment)
        _log_to_the_callers_file()
        try:
            if kind == "ping":
                import sys

                conn.send(("pong", sorted(sys.modules)))
            elif kind == "load":
                _, raw_path, frame = message
                image = core_io.load_image(os.fsdecode(raw_path), frame=frame)
                pixels = np.ascontiguousarray(image.pixels, dtype=np.float32)
                shell = dataclasses.replace(image, pixels=np.zeros((0, 0), np.float32))
                conn.send(("image", shell, pixels.shape))
                _write_raw(conn, pixels.data.cast("B"))
            elif kind == "scan":
                from cxrviewer.core.io.dicom import remembered_headers
                from cxrviewer.core.study import group_images

                paths = [Path(os.fsdecode(raw)) for raw in message[1]]
                problems: list[tuple[int, str]] = []

                def checked(paths: list[Path], problems: list[tuple[int, str]]) -> Iterator[Path]:
                    for index, path in enumerate(paths):   # each header parsed once: checked, then grouped
                        conn.send(("tick", index))          # the parent's per-file deadline starts now
                        text = core_io.header_problem(path)
                        if text is not None:
                            problems.append((index, text))
                        yield path

                with remembered_headers():
                    tree = group_images(checked(paths, problems))
                conn.send(("scan", (tree, problems)))
            elif kind == "tags":
                conn.send(("tags", core_io.dicom_tag_rows(os.fsdecode(message[1]))))
            elif kind == "thumbnail":
                _, raw_path, side = message
                conn.send(("thumbnail", imaging.thumbnail(core_io.load_image(os.fsdecode(raw_path)), side)))
            else:
                conn.send(("error", f"unknown request {kind!r}"))
        except ImageLoadError as exc:
            conn.send(("error", exc.reason))
        except MemoryError:
            conn.send(("error", "not enough memory to open this image"))
        except (EOFError, OSError, BrokenPipeError):
            return
        except Exception as exc:  # noqa: BLE001 - one bad file must never end the child's loop
            conn.send(("error", f"unexpected error while reading the file ({type(exc).__name__})"))


# ------------------------------------------------------------------------------ the parent
class _Child:
    """One spawned decode process and its duplex pipe."""

    def __init__(self, setup: str | None, memory: int, nice: int = 0) -> None:
        context = multiprocessing.get_context("spawn")   # never fork a process that runs Qt
        self.conn, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=_child_main, args=(child_end, setup, memory, nice),
                                       name="cxrviewer-decode", daemon=True)
        self.process.start()
        child_end.close()   # else a dead child's end of the pipe is never seen
        self.ready = False

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(2.0)
        except (OSError, ValueError, AssertionError):
            pass
        try:
            self.conn.close()
        except OSError:
            pass

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.process.join(0.5)
        if self.process.is_alive():
            self.kill()
        else:
            self.conn.close()


class _Abandoned(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why   # "timeout", "cancelled", "died"


class DecodePool:
    """`load(path, frame)` in one of at most `workers` child processes, with a deadline.

    Thread-safe: each caller thread takes an idle child (waits while all are busy) and gives it
    back; a child that overran, died or was cancelled is killed and a fresh one started in its
    place. `child_setup` ("module:function", called in each child after its imports) is a test
    hook only.
    """

    def __init__(self, workers: int = 1, deadline_s: float | None = None, *,
                 child_setup: str | None = None, memory_bytes: int | None = None, nice: int = 0) -> None:
        self.workers = max(int(workers), 1)
        self._deadline = deadline_s
        self._setup = child_setup
        self._memory = memory_bytes if memory_bytes is not None else child_memory_bytes()
        self._nice = nice
        self._cond = threading.Condition()
        self._idle: list[_Child] = []
        self._live = 0
        self._closed = False
        self.restarts = 0   # children replaced after a timeout, a crash or a cancel (for tests and the log)

    @property
    def deadline_s(self) -> float:
        return self._deadline if self._deadline is not None else decode_seconds()

    def warm(self) -> None:
        """Start one child now (its imports take a second or two) if none is running."""
        with self._cond:
            if self._live == 0 and not self._closed:
                self._idle.append(_Child(self._setup, self._memory, self._nice))
                self._live += 1

    def load(self, path: str | os.PathLike[str], frame: int = 0,
             cancelled: Callable[[], bool] | None = None) -> XrayImage:
        """`core.io.load_image(path, frame)` in a child; ImageLoadError on failure or timeout."""
        path = Path(path)
        reply = self._call(path, ("load", os.fsencode(path), int(frame)), cancelled, receive_pixels=True)
        shell, pixels = reply
        return dataclasses.replace(shell, path=path, pixels=pixels)

    def thumbnail(self, path: str | os.PathLike[str], side: int,
                  cancelled: Callable[[], bool] | None = None) -> np.ndarray:
        """`imaging.thumbnail(load_image(path), side)` (uint8, ≤ side²) computed in a child."""
        path = Path(path)
        return self._call(path, ("thumbnail", os.fsencode(path), int(side)), cancelled)

    def scan(self, paths: list[Path], cancelled: Callable[[], bool] | None = None) -> tuple[Any, list[tuple[int, str]]]:
        """A folder's header scan in a child: (`core.study.group_images(paths)`, [(index,
        `header_problem` message)]). Each file has the decode deadline (the child says when it
        starts one); ScanTimeout(index) names the file whose header took too long."""
        first = Path(paths[0]) if paths else Path(".")
        child = self._acquire(cancelled)
        if not child.ready:
            self._start(child, first, cancelled)
        healthy = False
        current = -1
        try:
            child.conn.send(("scan", [os.fsencode(p) for p in paths], settings_environment()))
            while True:
                started = time.monotonic()
                self._wait(child, started + self.deadline_s, cancelled, started)
                reply = child.conn.recv()
                if reply[0] == "tick":
                    current = int(reply[1])
                    continue
                healthy = True
                if reply[0] == "error":
                    raise ImageLoadError(first, reply[1])
                return reply[1]
        except _Abandoned as abandoned:
            if abandoned.why == "cancelled":
                raise DecodeCancelled(str(first)) from None
            if abandoned.why == "timeout" and current >= 0:
                log.warning("reading the header of %s took longer than %g s; its process was stopped",
                            paths[current], self.deadline_s)
                raise ScanTimeout(current) from None
            raise ImageLoadError(first, "the folder scan stopped unexpectedly") from None
        except (EOFError, OSError):
            raise ImageLoadError(first, "the folder scan stopped unexpectedly") from None
        finally:
            self._release(child, healthy)

    def tag_rows(self, path: str | os.PathLike[str], cancelled: Callable[[], bool] | None = None) -> list[tuple[Any, ...]]:
        """`core.io.dicom_tag_rows(path)` (the tag browser's rows) computed in a child."""
        path = Path(path)
        return self._call(path, ("tags", os.fsencode(path)), cancelled)

    def ping(self) -> list[str]:
        """The module names a child has imported (tests: no Qt, no TensorFlow)."""
        return self._call(Path("ping"), ("ping",), None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for child in idle:
            child.stop()

    # -- internals -----------------------------------------------------------------------
    def _acquire(self, cancelled: Callable[[], bool] | None) -> _Child:
        with self._cond:
            while True:
                if self._closed:
                    raise DecodeCancelled("the decode pool has been closed")
                if cancelled is not None and cancelled():
                    raise DecodeCancelled("superseded before it started")
                if self._idle:
                    return self._idle.pop()
                if self._live < self.workers:
                    self._live += 1
                    break
                self._cond.wait(POLL_SECONDS)
        try:
            return _Child(self._setup, self._memory, self._nice)
        except BaseException:
            with self._cond:
                self._live -= 1
                self._cond.notify_all()
            raise

    def _release(self, child: _Child, healthy: bool) -> None:
        rotate_if_due()   # the child may have appended to the log; only this process rotates it
        if healthy:
            with self._cond:
                if not self._closed:
                    self._idle.append(child)
                    self._cond.notify_all()
                    return
            child.stop()
            with self._cond:
                self._live -= 1
            return
        child.kill()
        with self._cond:
            self.restarts += 1
            if self._closed:
                self._live -= 1
            else:   # replaced at once: its imports run while the caller reports the problem
                try:
                    self._idle.append(_Child(self._setup, self._memory, self._nice))
                except Exception:  # noqa: BLE001 - no replacement now; the next call starts one
                    log.exception("could not start a replacement decode process")
                    self._live -= 1
            self._cond.notify_all()

    def _wait(self, child: _Child, until: float, cancelled: Callable[[], bool] | None,
              started: float | None = None) -> None:
        """Block until the child has something to say; raise _Abandoned past `until`, or on
        cancel (for a decode under way, only once it has run CANCEL_GRACE_S: a short decode is
        let finish rather than paying for a fresh process)."""
        while True:
            if cancelled is not None and cancelled() and (
                    started is None or time.monotonic() - started >= CANCEL_GRACE_S):
                raise _Abandoned("cancelled")
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise _Abandoned("timeout")
            try:
                if child.conn.poll(min(POLL_SECONDS, remaining)):
                    return
            except (OSError, EOFError):
                raise _Abandoned("died") from None
            if not child.process.is_alive() and not child.conn.poll(0):
                raise _Abandoned("died")

    def _read_raw(self, child: _Child, shape: tuple[int, ...], until: float,
                  cancelled: Callable[[], bool] | None, started: float) -> np.ndarray:
        """Read the child's raw float32 pixels into a new array (each read releases the GIL)."""
        if not hasattr(os, "readv"):
            self._wait(child, until, cancelled, started)
            return np.frombuffer(child.conn.recv_bytes(), dtype=np.float32).reshape(shape).copy()
        pixels = np.empty(shape, dtype=np.float32)
        view = pixels.data.cast("B")
        fd = child.conn.fileno()
        got = 0
        while got < len(view):
            self._wait(child, until, cancelled, started)
            count = os.readv(fd, [view[got:got + RAW_CHUNK]])
            if count == 0:
                raise EOFError("the decode process closed its pipe")
            got += count
        return pixels

    def _start(self, child: _Child, path: Path, cancelled: Callable[[], bool] | None) -> None:
        """Wait for a fresh child's imports. Cancelled meanwhile: it is kept (still starting)."""
        try:
            self._wait(child, time.monotonic() + STARTUP_SECONDS, cancelled)
            kind, _pid = child.conn.recv()
        except _Abandoned as abandoned:
            if abandoned.why == "cancelled":
                self._release(child, True)
                raise DecodeCancelled(str(path)) from None
            self._release(child, False)
            log.warning("a decode process did not start (%s)", abandoned.why)
            raise ImageLoadError(path, "the image decoder could not be started") from None
        except (EOFError, OSError):
            self._release(child, False)
            raise ImageLoadError(path, "the image decoder could not be started") from None
        child.ready = kind == "ready"

    def _call(self, path: Path, request: tuple[Any, ...], cancelled: Callable[[], bool] | None,
              receive_pixels: bool = False, deadline_s: float | None = None) -> Any:
        child = self._acquire(cancelled)
        if not child.ready:
            self._start(child, path, cancelled)
        healthy = False
        deadline = deadline_s if deadline_s is not None else self.deadline_s
        try:
            child.conn.send((*request, settings_environment()))
            started = time.monotonic()
            until = started + deadline
            self._wait(child, until, cancelled, started)
            reply = child.conn.recv()
            if reply[0] == "error":
                healthy = True
                raise ImageLoadError(path, reply[1])
            if receive_pixels:
                _, shell, shape = reply
                pixels = self._read_raw(child, shape, until, cancelled, started)
                healthy = True
                return shell, readonly(pixels)
            healthy = True
            return reply[1]
        except _Abandoned as abandoned:
            if abandoned.why == "cancelled":
                raise DecodeCancelled(str(path)) from None
            if abandoned.why == "timeout":
                log.warning("decoding %s took longer than %g s; its process was stopped", path, deadline)
                raise ImageLoadError(path, timeout_message(deadline)) from None
            log.warning("the decode process for %s ended unexpectedly (exit code %s)", path, child.process.exitcode)
            raise ImageLoadError(path, "the decoder stopped unexpectedly while reading this file "
                                       "(the file is probably corrupt)") from None
        except (EOFError, OSError) as exc:
            log.warning("lost the decode process for %s: %s", path, exc)
            raise ImageLoadError(path, "the decoder stopped unexpectedly while reading this file "
                                       "(the file is probably corrupt)") from None
        finally:
            self._release(child, healthy)


# ------------------------------------------------------------------------------ routing
def needs_isolation(path: str | os.PathLike[str]) -> bool:
    """True unless `path` is a PNG, JPEG or BMP of at most INLINE_MAX_PIXELS (from its header)
    and INLINE_MAX_BYTES.

    Every DICOM file goes to a child: compressed pixel data can loop, and even a plain one can
    hold 100,000 sequence items that pure-Python parsing turns into seconds of GIL held by the
    loader thread (measured: 100–160 ms GUI-thread gaps while one was read in-process). Files
    refused by the file-system checks (missing, FIFO, device, too large) stay in the caller:
    load_image refuses them at once, without reading.
    """
    from cxrviewer.core.io._common import has_dicom_preamble, max_file_bytes, open_regular, raster_format
    from cxrviewer.core.io.raster import header_size

    path = Path(path)
    try:
        with open_regular(path, max_file_bytes()) as handle:
            head = handle.read(HEADER_BYTES)
    except (ImageLoadError, OSError):
        return False
    fmt = raster_format(head)
    if fmt not in _INLINE_RASTERS or has_dicom_preamble(head):
        return True
    if os.stat(path).st_size > INLINE_MAX_BYTES:   # e.g. a 50 MB text chunk: Python-level chunk parsing
        return True
    dims = header_size(head, fmt)
    return dims is None or dims[0] * dims[1] > INLINE_MAX_PIXELS


_SHARED: dict[str, DecodePool] = {}
_SHARED_LOCK = threading.Lock()
SHARED_WORKERS = {"view": 1, "background": 1, "predict": 2}
# Measured on a loaded 2-core machine: a 100-megapixel decode at nice 0 starved the GUI thread
# (a 430 ms gap); the viewer's children run below it, thumbnails and scans lower still.
SHARED_NICE = {"view": 4, "background": 12, "predict": 0}


def shared_pool(name: str) -> DecodePool:
    """The process-wide pool for one purpose, made on first use: "view" (the shown image),
    "background" (thumbnails and folder scans), "predict" (its two loader threads)."""
    with _SHARED_LOCK:
        pool = _SHARED.get(name)
        if pool is None:
            pool = _SHARED[name] = DecodePool(SHARED_WORKERS.get(name, 1), nice=SHARED_NICE.get(name, 0))
        return pool


def replace_shared_pool(name: str, pool: DecodePool | None) -> DecodePool | None:
    """Install `pool` as the shared pool `name` (None: the default is made on next use); returns the old one."""
    with _SHARED_LOCK:
        old = _SHARED.pop(name, None)
        if pool is not None:
            _SHARED[name] = pool
        return old


@atexit.register
def _close_shared_pools() -> None:
    with _SHARED_LOCK:
        pools = list(_SHARED.values())
        _SHARED.clear()
    for pool in pools:
        pool.close()


def load_image_isolated(path: str | os.PathLike[str], frame: int = 0, *, pool: DecodePool | str = "view",
                        cancelled: Callable[[], bool] | None = None) -> XrayImage:
    """`load_image(path, frame)`, in a child process when the file needs it (`needs_isolation`).

    Raises ImageLoadError (a timeout included), or DecodeCancelled when `cancelled()` became
    true while a child was decoding (that child is stopped).
    """
    from cxrviewer.core.io import load_image

    if not needs_isolation(path):
        return load_image(path, frame=frame)
    chosen = shared_pool(pool) if isinstance(pool, str) else pool
    return chosen.load(path, frame, cancelled)


def thumbnail_isolated(path: str | os.PathLike[str], side: int, *, pool: DecodePool | str = "background",
                       cancelled: Callable[[], bool] | None = None) -> np.ndarray:
    """The default display of `path` at most `side` pixels long (uint8), risky files in a child."""
    from cxrviewer.core.imaging import thumbnail
    from cxrviewer.core.io import load_image

    if not needs_isolation(path):
        return thumbnail(load_image(path), side)
    chosen = shared_pool(pool) if isinstance(pool, str) else pool
    return chosen.thumbnail(path, side, cancelled)


MAX_SCAN_RETRIES = 5


def scan_headers(paths: list[Path], *, pool: DecodePool | str = "background",
                 cancelled: Callable[[], bool] | None = None) -> tuple[Any, list[tuple[Path, str]], list[Path]]:
    """A folder's header scan in a child process, so pathological headers never hold the GUI
    process's interpreter lock: (`core.study.group_images` of the files, [(path, header
    problem)], [files left out of the grouping]). A file whose header takes longer than the
    decode deadline is left out, reported as a problem, and the scan goes on without it."""
    chosen = shared_pool(pool) if isinstance(pool, str) else pool
    remaining = list(paths)
    slow: list[tuple[Path, str]] = []
    for _attempt in range(MAX_SCAN_RETRIES + 1):
        try:
            tree, found = chosen.scan(remaining, cancelled)
        except ScanTimeout as timeout:
            stuck = remaining.pop(timeout.index)
            slow.append((stuck, str(ImageLoadError(stuck, "reading its header " + timeout_message(chosen.deadline_s)
                                                   .replace("decoding ", "", 1)))))
            continue
        problems = [(remaining[index], text) for index, text in found]
        return tree, slow + problems, [path for path, _ in slow]
    raise ImageLoadError(paths[0] if paths else Path("."), "the folder scan stopped: too many files whose headers hang")


def tag_rows_isolated(path: str | os.PathLike[str], *, pool: DecodePool | str = "view",
                      cancelled: Callable[[], bool] | None = None) -> list[tuple[Any, ...]]:
    """`core.io.dicom_tag_rows(path)`; for a DICOM file (`needs_isolation`) in a child, where
    parsing a 20,000-element header never holds this process's interpreter lock."""
    from cxrviewer.core import io as core_io

    if not needs_isolation(path):
        return core_io.dicom_tag_rows(Path(path))
    chosen = shared_pool(pool) if isinstance(pool, str) else pool
    return chosen.tag_rows(path, cancelled)
