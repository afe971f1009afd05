"""Decode children append to the caller's log file; only the main process ever rotates it.

The real pool is started with a hook (`chatty_child`, run in each spawned child) that makes a
decode write many lines to the log, records any rotation the child itself does, and answers with
the names of the child's log handlers. The rotation size is tiny, so the parent rotates while
the children are writing.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading
from pathlib import Path

import pytest

from cxrviewer.core import logs
from cxrviewer.core.decode_pool import DecodePool
from cxrviewer.core.errors import ImageLoadError

HOOK = "tests.unit.test_decode_pool_logging:chatty_child"
CHATTY = "chatty-decode"
CHILD_ROLLOVERS = "child-rollovers.txt"   # in the log folder: one line per rotation a child did
TINY_BYTES = 3000
CHILD_LINES = 25
PADDING = "p" * 80
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def chatty_child() -> None:
    """In a decode child: a tiny rotation size (as the parent's), rotations recorded, and
    `load_image` of a CHATTY file logging CHILD_LINES lines, then failing with the names of
    the root logger's handlers."""
    from cxrviewer.core import io as core_io

    logs.MAX_BYTES = TINY_BYTES
    rollover = logging.handlers.RotatingFileHandler.doRollover

    def recorded_rollover(self: logging.handlers.RotatingFileHandler) -> None:
        with open(Path(self.baseFilename).parent / CHILD_ROLLOVERS, "a", encoding="utf-8") as marker:
            marker.write(f"{os.getpid()}\n")
        rollover(self)

    logging.handlers.RotatingFileHandler.doRollover = recorded_rollover   # type: ignore[method-assign]
    real = core_io.load_image

    def load_image(path, frame=0, **kwargs):
        name = Path(os.fspath(path)).name
        if CHATTY not in name:
            return real(path, frame=frame, **kwargs)
        logger = logging.getLogger("cxrviewer.test.child")
        for number in range(CHILD_LINES):
            logger.warning("child %s line %03d %s", name, number, PADDING)
        kinds = sorted(type(handler).__name__ for handler in logging.getLogger().handlers
                       if isinstance(handler, logging.FileHandler))
        raise ImageLoadError(path, "handlers: " + ",".join(kinds))

    core_io.load_image = load_image


def _log_handlers(folder: Path) -> list[logging.Handler]:
    """The root logger's handlers writing into `folder` (pytest adds a file handler of its own)."""
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == folder]


def _all_log_text(folder: Path) -> str:
    return "".join(path.read_text(encoding="utf-8") for path in sorted(folder.glob(logs.LOG_FILE_NAME + "*")))


def test_children_append_to_the_log_and_only_the_parent_rotates_it(log_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", TINY_BYTES)
    monkeypatch.setattr(logs, "BACKUP_COUNT", 100)        # no line is rotated away: every one can be found
    path = logs.setup_logging()
    assert [type(h) for h in _log_handlers(log_dir)] == [logging.handlers.RotatingFileHandler]

    pool = DecodePool(2, 60.0, child_setup=HOOK)
    reasons: list[str] = []
    names = [f"{CHATTY}-{thread}-{request}.dcm" for thread in range(2) for request in range(3)]

    def decode(mine: list[str]) -> None:
        for name in mine:
            with pytest.raises(ImageLoadError) as error:
                pool.load(log_dir.parent / name)
            reasons.append(error.value.reason)

    threads = [threading.Thread(target=decode, args=(names[i::2],), daemon=True) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        parent = logging.getLogger("cxrviewer.test.parent")
        number = 0
        while any(thread.is_alive() for thread in threads) or number < 20:
            parent.warning("parent line %03d %s", number, PADDING)
            number += 1
            for thread in threads:
                thread.join(0.02)
            assert number < 20_000, "the decodes did not finish"
    finally:
        pool.close()

    assert not (log_dir / CHILD_ROLLOVERS).exists(), "a decode child rotated the log file"
    assert sorted(reasons) == ["handlers: AppendOnlyHandler"] * len(names)
    assert (log_dir / (logs.LOG_FILE_NAME + ".1")).exists(), "the parent never rotated: the test proves nothing"
    assert not path.exists() or path.stat().st_size <= TINY_BYTES   # rotated after each request, whoever wrote
    text = _all_log_text(log_dir)
    for name in names:                               # every child line arrived, once
        for line in range(CHILD_LINES):
            assert text.count(f"child {name} line {line:03d} {PADDING}\n") == 1, (name, line)
    for line in range(number):
        assert text.count(f"parent line {line:03d} {PADDING}\n") == 1, line
    lines = text.splitlines()
    assert all(RECORD_START.match(line) for line in lines), "a record was cut or interleaved"
    assert len(lines) == len(names) * CHILD_LINES + number


def test_the_main_process_rotates_and_a_child_would_only_append(log_dir: Path, monkeypatch) -> None:
    assert logs.is_main_process()
    assert isinstance(logs._handler, type(None))
    logs.setup_logging()
    assert isinstance(logs._handler, logging.handlers.RotatingFileHandler)
    monkeypatch.setattr(logs, "is_main_process", lambda: False)
    logs.setup_logging()                              # same folder, other kind: replaced
    handler = logs._handler
    assert isinstance(handler, logs.AppendOnlyHandler)
    assert _log_handlers(log_dir) == [handler]
    logging.getLogger("cxrviewer.test").warning("appended")
    assert handler.stream is None                     # the file is not held open between records
    assert "appended" in (log_dir / logs.LOG_FILE_NAME).read_text(encoding="utf-8")
