"""The magnifier: L shows the view under the cursor 3× larger beside it; off again with L."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from cxrviewer.ui.viewer.loupe import LOUPE_SIDE, MAGNIFICATION

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot
from .synthetic import write_png


def move(widget, x: float, y: float) -> None:
    point = QPointF(x, y)
    event = QMouseEvent(QEvent.Type.MouseMove, point, widget.mapToGlobal(point), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_the_magnifier_shows_the_pixels_under_the_cursor_three_times_larger(qtbot, make_window, tmp_path):
    pixels = np.zeros((240, 240), np.uint8)
    pixels[:, 120:] = 255                      # a sharp vertical edge down the middle
    path = tmp_path / "edge.png"
    write_png(path, pixels)
    window = make_window(size=(1200, 800))
    open_and_wait(qtbot, window, [path])
    loupe, viewport = window.loupe, window.canvas.viewport()
    assert not loupe.label.isVisible()
    window.loupe.action.trigger()              # L
    edge = window.canvas.image_to_viewport(QPointF(120, 120))
    move(viewport, edge.x(), edge.y())
    assert loupe.label.isVisible()
    shot = qimage_to_rgb(loupe.label.pixmap().toImage())
    assert shot.shape[:2] == (LOUPE_SIDE, LOUPE_SIDE)
    row = shot[LOUPE_SIDE // 2, 4:-4, 0].astype(int)
    assert row[:LOUPE_SIDE // 3].max() < 60 and row[-LOUPE_SIDE // 3:].min() > 200   # dark left, bright right
    # magnified: the dark-to-bright step is MAGNIFICATION times wider than one screen pixel would be
    assert loupe.label.geometry().intersects(viewport.rect()) and not loupe.label.geometry().contains(edge.toPoint())
    save_screenshot(OUTPUT_DIR / "loupe.png", qimage_to_rgb(window.grab()))
    window.loupe.action.trigger()
    assert not loupe.label.isVisible()
    assert MAGNIFICATION == 3
