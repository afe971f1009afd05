"""pydicom's reading warnings go to the log, one warning per file, never to stderr.

pydicom 3 reports damage it reads past ("End of file reached before delimiter …") through
`pydicom.misc.warn_and_log`: a record on the "pydicom" logger AND a UserWarning. A process
without a warnings handler (the decode children) prints that UserWarning on stderr, once per
process that reads the file — twice for a thumbnail and the shown image — and without the
file's name ("in file <no filename>": we parse from memory). So, once per process
(`install`), the UserWarning copy is dropped (a narrow filter: UserWarnings raised from
pydicom's own modules; the logger copy carries the same text), and while
`file_warnings(path)` is active the "pydicom" warning records of this thread are collected
and logged as one warning naming the file (a nested `file_warnings` adds to the outer one's
line). A file read again in the same process (its header, then its pixels) is not reported
again (`REPORTED_KEPT` recent reports are remembered).
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_warnings", "install"]

log = logging.getLogger("cxrviewer.core.io.dicom")

PYDICOM_LOGGER = "pydicom"
REPORTED_KEPT = 64
_PYDICOM_MODULES = r"pydicom(\..*)?$"

_local = threading.local()
_lock = threading.Lock()
_reported: OrderedDict[tuple[str, tuple[str, ...]], None] = OrderedDict()
_installed = False


class _CollectPerFile(logging.Filter):
    """On the "pydicom" logger: inside `file_warnings`, keep this thread's warnings for one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        collected: list[str] | None = getattr(_local, "messages", None)
        if collected is None or record.levelno < logging.WARNING:
            return True
        message = record.getMessage().replace(" in file <no filename>", "")
        if message not in collected:
            collected.append(message)
        return False


def _has_filter() -> bool:
    return any(action == "ignore" and category is UserWarning and getattr(module, "pattern", None) == _PYDICOM_MODULES
               for action, _message, category, module, _lineno in warnings.filters)


def install() -> None:
    """Drop pydicom's UserWarning copies (stderr) and collect its logged ones per file; idempotent.

    The warnings filter is checked on every call: a `warnings.catch_warnings` block that was
    open when it was first added (pytest's, per test) takes it away again on exit."""
    global _installed
    with _lock:
        if not _has_filter():
            warnings.filterwarnings("ignore", category=UserWarning, module=_PYDICOM_MODULES)
        if not _installed:
            logging.getLogger(PYDICOM_LOGGER).addFilter(_CollectPerFile())
            _installed = True


@contextmanager
def file_warnings(path: Path) -> Iterator[None]:
    """pydicom's warnings while reading `path` become one log warning naming the file."""
    install()
    if getattr(_local, "messages", None) is not None:   # nested (a load parses, then decodes): one line
        yield
        return
    collected: list[str] = []
    _local.messages = collected
    try:
        yield
    finally:
        _local.messages = None
        if collected:
            _report(path, tuple(collected))


def _report(path: Path, messages: tuple[str, ...]) -> None:
    key = (str(path), messages)
    with _lock:
        if key in _reported:
            _reported.move_to_end(key)
            return
        _reported[key] = None
        while len(_reported) > REPORTED_KEPT:
            _reported.popitem(last=False)
    log.warning("%s: pydicom read past damage in the file: %s", path, "; ".join(messages))
