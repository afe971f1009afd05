"""The angle tool (Tools › Angle, A), beside the ruler: click an arm end, the vertex, the other arm end
(or drag the first arm, then click the second) and the angle in degrees is drawn at the vertex.

Angles live in image coordinates (children of the canvas's image root), so they stay put under
zoom, pan, rotation and flips; they are cleared with the ruler's measurements (Delete, a new
image, Reset). The ruler and the angle tool take turns: turning one on turns the other off.
It is handed the canvas, the window as a `Shell` (Tools-menu action, status line) and the ruler's action.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QMouseEvent
from PySide6.QtWidgets import QApplication

from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.corner_text import corner_font
from cxrviewer.ui.viewer.measure import AngleMeasurement
from cxrviewer.ui.viewer.ruler import AngleItem

DRAG_PX = 4.0      # a press and release further apart than this (screen pixels) drew the first arm


class AngleTool(QObject):
    """Watches the canvas viewport's left clicks while enabled and places angles."""

    angle_added = Signal(object)        # AngleMeasurement

    def __init__(self, canvas: ImageCanvas, shell: Shell, ruler: QAction, menu_before: str | None = None) -> None:
        """`ruler`: the Ruler action (they take turns); the Tools-menu entry goes before action `menu_before`."""
        super().__init__(shell.host())
        self.setObjectName("angleTool")
        self.shell, self.ruler = shell, ruler
        self.canvas = canvas
        self._angles: list[AngleItem] = []
        self._active: AngleItem | None = None
        self._press: QPointF | None = None
        self._font = corner_font(QApplication.font())     # the ruler's label font
        self.action = QAction("&Angle", shell.host(), checkable=True)
        self.action.setObjectName("action_angle")
        self.action.setShortcut(QKeySequence("A"))
        self.action.setToolTip("Measure an angle: click an arm end, the vertex, then the other arm end (A)")
        self.action.toggled.connect(self._on_action_toggled)
        shell.add_menu_action("tools", self.action, before=menu_before)
        self.canvas.ruler_toggled.connect(self._on_canvas_ruler_toggled)
        self.canvas.measurements_cleared.connect(self.clear)
        self.canvas.viewport().installEventFilter(self)

    # -- state ---------------------------------------------------------------------------
    def is_enabled(self) -> bool:
        return self.action.isChecked()

    def set_enabled(self, enabled: bool) -> None:
        self.action.setChecked(enabled)

    def angles(self) -> list[AngleItem]:
        """The finished angles on the image (not the one being placed)."""
        return list(self._angles)

    def measurements(self) -> list[AngleMeasurement]:
        return [m for m in (angle.measurement() for angle in self._angles) if m is not None]

    def active(self) -> AngleItem | None:
        return self._active

    def clear(self) -> None:
        for item in self._angles + ([self._active] if self._active is not None else []):
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._angles = []
        self._active = None
        self._press = None
        self.canvas.viewport().update()

    # -- slots -----------------------------------------------------------------------------
    def _on_action_toggled(self, checked: bool) -> None:
        if checked:
            if self.ruler.isChecked():
                self.ruler.setChecked(False)
            elif self.canvas.is_ruler_enabled():
                self.canvas.set_ruler_enabled(False)
            self.canvas.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            self._drop_active()
            if not self.canvas.is_ruler_enabled():
                self.canvas.viewport().setCursor(Qt.CursorShape.ArrowCursor)

    def _on_canvas_ruler_toggled(self, enabled: bool) -> None:
        if enabled and self.is_enabled():
            self.action.setChecked(False)

    def _drop_active(self) -> None:
        if self._active is not None and self._active.scene() is not None:
            self._active.scene().removeItem(self._active)
        self._active = None
        self._press = None

    # -- mouse -----------------------------------------------------------------------------
    def place(self, viewport_point: QPointF) -> None:
        """One click at `viewport_point`: starts an angle, or adds its vertex / last arm end."""
        point = self.canvas.viewport_to_image(viewport_point)
        if self._active is None:
            item = AngleItem(point, self.canvas.image().pixel_spacing, self._font, self.canvas.image_root())
            item.setZValue(100)
            self._active = item
        else:
            self._active.add_point(point)
            if self._active.is_complete():
                self._finish()
        self.canvas.viewport().update()

    def _finish(self) -> None:
        item, self._active = self._active, None
        if item is None:
            return
        self._angles.append(item)
        measured = item.measurement()
        if measured is not None:
            self.shell.show_status(f"Angle: {measured.text}", 10000)
            self.angle_added.emit(measured)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.is_enabled() or self.canvas.image() is None or not isinstance(event, QMouseEvent):
            return False
        kind = event.type()
        position = event.position()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = QPointF(position)
            self.place(position)
            return True
        if kind == QEvent.Type.MouseButtonDblClick and event.button() == Qt.MouseButton.LeftButton:
            return True    # no fit-to-window while placing points
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            press, self._press = self._press, None
            active = self._active
            if active is not None and press is not None and len(active.points()) == 1 \
                    and (position - press).manhattanLength() > DRAG_PX:
                self.place(position)      # the first arm was dragged: its end is the vertex
            return True
        if kind == QEvent.Type.MouseMove and self._active is not None:
            self._active.set_preview(self.canvas.viewport_to_image(position))
            self.canvas.viewport().update()
        return False
