"""Logging: one rotating file per user, where tracebacks go; users see one-line messages only."""
from __future__ import annotations

import logging
import logging.handlers
import os
import tempfile
from pathlib import Path

LOG_DIR_ENV = "CXRVIEWER_LOG_DIR"
LOG_FILE_NAME = "cxrviewer.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 3
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

_handler: logging.handlers.RotatingFileHandler | None = None


def log_dir() -> Path:
    """$CXRVIEWER_LOG_DIR, else the platform's per-user log folder for cxrviewer."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir("cxrviewer", appauthor=False))


def _open_handler(folder: Path) -> logging.handlers.RotatingFileHandler:
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        folder / LOG_FILE_NAME, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", errors="backslashreplace", delay=True
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.DEBUG)
    return handler


def setup_logging(level: int = logging.INFO) -> Path:
    """Send log records (and Python warnings) to the rotating log file; return its path.

    Safe to call more than once: the handler is replaced only when the folder changed.
    Nothing is added on stderr. If the log folder cannot be created, the temp folder is used.
    """
    global _handler
    folder = log_dir()
    path = folder / LOG_FILE_NAME
    root = logging.getLogger()
    if _handler is not None and Path(_handler.baseFilename) == path.absolute():
        return path
    try:
        handler = _open_handler(folder)
    except OSError:
        folder = Path(tempfile.gettempdir()) / "cxrviewer-logs"
        path = folder / LOG_FILE_NAME
        handler = _open_handler(folder)
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _handler = handler
    root.addHandler(handler)
    if root.getEffectiveLevel() > level:
        root.setLevel(level)
    logging.captureWarnings(True)
    return path


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
