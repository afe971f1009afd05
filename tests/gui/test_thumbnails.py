"""Study-browser thumbnails: made off the GUI thread, for the rows on screen, from the default display."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .helpers import open_and_wait
from .image_compare import qimage_to_rgb
from .synthetic import write_png


def _levels(tmp_path: Path, values: list[int]) -> Path:
    folder = tmp_path / "study"
    for number, value in enumerate(values):
        write_png(folder / f"img_{number:03d}.png", np.full((300, 200), value, np.uint8))
    return folder


def test_each_visible_image_gets_its_own_thumbnail(qtbot, window, tmp_path) -> None:
    folder = _levels(tmp_path, [30, 130, 230])
    (folder / "img_999.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    open_and_wait(qtbot, window, [folder])
    tree = window.study_dock.tree
    qtbot.waitUntil(lambda: all(tree.thumbnail_of(i) is not None for i in range(3)), timeout=30_000)
    means = [qimage_to_rgb(tree.thumbnail_of(i)).mean() for i in range(3)]
    assert means == sorted(means) and means[0] < 60 < 100 < means[1] < 160 < 200 < means[2]
    first = tree.thumbnail_of(0)
    assert max(first.width(), first.height()) == 64 and first.width() < first.height()   # aspect kept
    assert not tree.image_item(0).icon(0).isNull()
    qtbot.wait(300)
    assert tree.thumbnail_of(3) is None      # unreadable: no picture, and the viewer carries on


def test_only_rows_on_screen_are_decoded(qtbot, make_window, tmp_path, monkeypatch) -> None:
    import cxrviewer.core.io as io

    decoded: list[str] = []
    threads: set[str] = set()
    real = io.load_image

    def spy(path, *args, **kwargs):
        if threading.current_thread().name != "MainThread":
            threads.add(threading.current_thread().name)
        decoded.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io, "load_image", spy)
    folder = _levels(tmp_path, [int(v) for v in np.linspace(10, 240, 120)])
    window = make_window(size=(1000, 700))
    open_and_wait(qtbot, window, [folder])
    tree = window.study_dock.tree
    qtbot.waitUntil(lambda: tree.thumbnail_of(1) is not None, timeout=30_000)
    qtbot.wait(500)
    shown = sum(tree.thumbnail_of(i) is not None for i in range(120))
    assert 2 <= shown < 40                   # the rows that fit, not all 120
    tree.scrollToItem(tree.image_item(119))
    qtbot.waitUntil(lambda: tree.thumbnail_of(119) is not None, timeout=30_000)
    assert len(decoded) < 100 and "MainThread" not in threads

