"""ImageLoader: off the GUI thread, newest request wins, stale results dropped, cache."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.ui.loader import ImageLoader

from .synthetic import write_png


@pytest.fixture
def loader(qtbot):
    instance = ImageLoader()
    yield instance
    instance.shutdown()


@pytest.fixture
def pngs(tmp_path: Path) -> list[Path]:
    return [write_png(tmp_path / f"{i}.png", np.full((300, 300), i * 10, np.uint8)) for i in range(3)]


def test_only_the_newest_request_is_delivered(qtbot, loader: ImageLoader, pngs) -> None:
    delivered: list[tuple[int, Path]] = []
    loader.image_loaded.connect(lambda rid, image: delivered.append((rid, image.path)))
    loader.request(pngs[0])
    loader.request(pngs[1])
    newest = loader.request(pngs[2])
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000):
        pass
    loader.wait()
    qtbot.wait(20)
    assert delivered == [(newest, pngs[2])]


def test_loading_happens_off_the_gui_thread(qtbot, loader: ImageLoader, pngs, monkeypatch) -> None:
    import cxrviewer.core.io as io

    threads: list[threading.Thread] = []
    real = io.load_image

    def spy(path, frame=0, **kwargs):
        threads.append(threading.current_thread())
        return real(path, frame=frame, **kwargs)

    monkeypatch.setattr(io, "load_image", spy)
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000):
        loader.request(pngs[0])
    assert threads and threads[0] is not threading.main_thread()


def test_failures_are_signalled_with_the_reason(qtbot, loader: ImageLoader, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really")
    with qtbot.waitSignal(loader.load_failed, timeout=30_000) as blocker:
        loader.request(bad)
    _, path, message = blocker.args
    assert path == str(bad) and "bad.png" in message


def test_cached_image_is_delivered_asynchronously(qtbot, loader: ImageLoader, pngs) -> None:
    with qtbot.waitSignal(loader.image_loaded, timeout=30_000) as first:
        loader.request(pngs[0])
    got = []
    loader.image_loaded.connect(lambda rid, image: got.append(image))
    loader.request(pngs[0])
    assert got == []                      # not re-entrant: arrives via the event loop
    qtbot.waitUntil(lambda: len(got) == 1, timeout=5_000)
    assert got[0] is first.args[1]
