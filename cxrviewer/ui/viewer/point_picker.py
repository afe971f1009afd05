"""Picking a point on the canvas: while active, a left click marks it and a marker follows zoom and rotation."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from cxrviewer.ui.viewer.canvas import ImageCanvas

CLICK_TOLERANCE = 4.0     # a press and release closer than this (device px) is a click, not a pan
MARKER_Z = 200.0          # above the heat map and the rulers


class PointMarker(QGraphicsItem):
    """A ring with a cross, constant size on screen, at an image-pixel position."""

    RADIUS = 11.0

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)

    def boundingRect(self) -> QRectF:
        r = self.RADIUS + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.RADIUS
        for colour, width in ((QColor(0, 0, 0, 200), 4.0), (QColor("#00e5ff"), 2.0)):
            pen = QPen(colour, width)
            painter.setPen(pen)
            painter.drawEllipse(QPointF(0, 0), r, r)
            painter.drawLine(QPointF(-r - 2, 0), QPointF(-r / 2, 0))
            painter.drawLine(QPointF(r / 2, 0), QPointF(r + 2, 0))
            painter.drawLine(QPointF(0, -r - 2), QPointF(0, -r / 2))
            painter.drawLine(QPointF(0, r / 2), QPointF(0, r + 2))


class PointPicker(QObject):
    """While active, a left click on `canvas` (press and release within CLICK_TOLERANCE) picks a point.

    The canvas still receives the events, so dragging pans and right-drag windows as usual.
    The marker is a child of the canvas' image root, so it stays on the anatomy under zoom,
    pan, rotation and flips.
    """

    point_picked = Signal(float, float)   # x (column), y (row) in image pixels

    def __init__(self, canvas: ImageCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self._active = False
        self._press: QPointF | None = None
        self.marker = PointMarker()
        self.marker.setVisible(False)
        canvas.add_overlay_item(self.marker, MARKER_Z)
        canvas.viewport().installEventFilter(self)

    def is_active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        self._active = bool(active)
        self._press = None
        cursor = Qt.CursorShape.CrossCursor if active else Qt.CursorShape.ArrowCursor
        self._canvas.viewport().setCursor(cursor)

    def show_marker(self, x: float, y: float) -> None:
        self.marker.setPos(QPointF(x, y))
        self.marker.setVisible(True)

    def clear_marker(self) -> None:
        self.marker.setVisible(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._active or not isinstance(event, QMouseEvent):
            return False
        if event.type() == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
            return False   # let the canvas start a pan; a release near the press is a click
        if event.type() == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            press, self._press = self._press, None
            if press is None:
                return False
            moved = event.position() - press
            if abs(moved.x()) + abs(moved.y()) > CLICK_TOLERANCE:
                return False
            canvas = self._canvas
            image = canvas.image()
            if image is None:
                return False
            point = canvas.viewport_to_image(event.position())
            height, width = image.shape
            if 0 <= point.x() < width and 0 <= point.y() < height:
                self.show_marker(point.x(), point.y())
                self.point_picked.emit(float(point.x()), float(point.y()))
            return False
        return False


