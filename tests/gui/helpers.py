"""Helpers for GUI tests: waiting for loads, synthetic mouse input, XrayImage factories."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from cxrviewer.core.imaging import full_range_window, percentile_window
from cxrviewer.core.types import SpacingKind, Window, WindowPreset, XrayImage, readonly

LOAD_TIMEOUT_MS = 60_000


def open_and_wait(qtbot, window, paths: Sequence[str | Path]):
    """Open `paths` and wait until an image (or None, after failures) is shown."""
    return wait_for_image(qtbot, window, lambda: window.open_paths([str(p) for p in paths]))


def wait_for_image(qtbot, window, action: Callable[[], object]):
    """Run `action` and wait for the window's next image_changed; returns its image."""
    with qtbot.waitSignal(window.image_changed, timeout=LOAD_TIMEOUT_MS) as blocker:
        action()
    window.canvas.flush_render()
    return blocker.args[0]


def wait_for_tags(qtbot, window):
    """Wait until the tag dock lists the current image's tags (read after the image, off-thread)."""
    def listed() -> bool:
        image, listing = window.current_image(), window.shown_tags()
        return image is not None and listing is not None and listing.path == str(image.path)

    qtbot.waitUntil(listed, timeout=LOAD_TIMEOUT_MS)
    return window.shown_tags()


def send_mouse(
    widget: QWidget,
    kind: QEvent.Type,
    pos: QPointF,
    button: Qt.MouseButton = Qt.MouseButton.NoButton,
    buttons: Qt.MouseButton = Qt.MouseButton.NoButton,
) -> None:
    """Deliver a mouse event with an explicit button state (QTest's mouseMove has none)."""
    pos = QPointF(pos)
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, button: Qt.MouseButton, start: QPointF, end: QPointF, steps: int = 8) -> None:
    """Press at `start`, move in `steps` to `end`, release — like a user drag."""
    send_mouse(widget, QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        t = i / steps
        point = QPointF(start.x() + (end.x() - start.x()) * t, start.y() + (end.y() - start.y()) * t)
        send_mouse(widget, QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def hover(widget: QWidget, pos: QPointF) -> None:
    send_mouse(widget, QEvent.Type.MouseMove, pos)


def make_xray(
    pixels: np.ndarray,
    *,
    window: Window | None = None,
    invert_for_display: bool = False,
    metadata: dict[str, str] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    spacing_kind: SpacingKind = SpacingKind.NONE,
    name: str = "synthetic.png",
) -> XrayImage:
    """An XrayImage straight from an array (no file), for canvas-only tests."""
    data = readonly(np.ascontiguousarray(pixels, dtype=np.float32))
    default = window or percentile_window(data)
    return XrayImage(
        path=Path(name),
        display_name=name,
        pixels=data,
        default_window=default,
        presets=(WindowPreset("Default", default), WindowPreset("Full range", full_range_window(data))),
        photometric="MONOCHROME1" if invert_for_display else "MONOCHROME2",
        invert_for_display=invert_for_display,
        pixel_spacing=pixel_spacing,
        spacing_kind=spacing_kind,
        metadata=metadata or {},
    )
