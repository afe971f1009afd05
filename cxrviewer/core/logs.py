"""Logging: one rotating file per user, where tracebacks go; users see one-line messages only.

Only the main process rotates the file. A multiprocessing child (a decode process of
`core.decode_pool`) appends to the same file with `AppendOnlyHandler`: it opens the file for
each record and closes it again, so it never rotates, never keeps writing into a file the main
process has renamed away, and never holds the file open while the main process renames it
(which Windows refuses).
"""
from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
import tempfile
from pathlib import Path

LOG_DIR_ENV = "CXRVIEWER_LOG_DIR"
LOG_FILE_NAME = "cxrviewer.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

_handler: logging.FileHandler | None = None


class AppendOnlyHandler(logging.FileHandler):
    """Appends each record to the file, opened for that record only; never rotates."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8", errors="backslashreplace", delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            with open(self.baseFilename, "a", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(text)
        except Exception:  # noqa: BLE001 - as logging's own handlers: report, never raise
            self.handleError(record)


def is_main_process() -> bool:
    """False in a multiprocessing child (a decode process): such a process must never rotate the log."""
    return multiprocessing.parent_process() is None


def log_dir() -> Path:
    """$CXRVIEWER_LOG_DIR, else the platform's per-user log folder for cxrviewer."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir("cxrviewer", appauthor=False))


def _open_handler(folder: Path, rotate: bool) -> logging.FileHandler:
    folder.mkdir(parents=True, exist_ok=True)
    handler: logging.FileHandler
    if rotate:
        handler = logging.handlers.RotatingFileHandler(
            folder / LOG_FILE_NAME, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8",
            errors="backslashreplace", delay=True
        )
    else:
        handler = AppendOnlyHandler(folder / LOG_FILE_NAME)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.DEBUG)
    return handler


def setup_logging(level: int = logging.INFO) -> Path:
    """Send log records (and Python warnings) to the log file; return its path.

    The main process's handler rotates the file; a multiprocessing child's only appends to it.
    Safe to call more than once: the handler is replaced only when the folder changed.
    Nothing is added on stderr. If the log folder cannot be created, the temp folder is used.
    """
    global _handler
    folder = log_dir()
    path = folder / LOG_FILE_NAME
    rotate = is_main_process()
    root = logging.getLogger()
    if (_handler is not None and Path(_handler.baseFilename) == path.absolute()
            and isinstance(_handler, logging.handlers.RotatingFileHandler) == rotate):
        return path
    try:
        handler = _open_handler(folder, rotate)
    except OSError:
        folder = Path(tempfile.gettempdir()) / "cxrviewer-logs"
        path = folder / LOG_FILE_NAME
        handler = _open_handler(folder, rotate)
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _handler = handler
    root.addHandler(handler)
    if root.getEffectiveLevel() > level:
        root.setLevel(level)
    logging.captureWarnings(True)
    return path


def rotate_if_due() -> None:
    """Rotate the file now when it has reached MAX_BYTES (children's lines count); main process only.

    The rotating handler checks the size only when this process logs, so the decode pool calls
    this after each request: children that log much while this process logs nothing cannot
    grow the file past MAX_BYTES by more than the requests then running wrote.
    """
    handler = _handler
    if not isinstance(handler, logging.handlers.RotatingFileHandler) or handler.maxBytes <= 0:
        return
    handler.acquire()
    try:
        if os.path.getsize(handler.baseFilename) >= handler.maxBytes:
            handler.doRollover()
    except OSError:   # no file yet, or (Windows) a child is writing to it: the next call rotates
        pass
    finally:
        handler.release()


def current_log_path() -> Path | None:
    """The file setup_logging() writes to, or None before it was called."""
    return Path(_handler.baseFilename) if _handler is not None else None


def shutdown_logging() -> None:
    """Detach and close the log file handler (tests, and embedding applications)."""
    global _handler
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
        _handler = None
    logging.captureWarnings(False)
