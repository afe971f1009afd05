"""Graphics items for the measurement tools, in image coordinates with an upright label:
the distance ruler (a line) and the angle (two arms from a vertex, with an arc)."""
from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from cxrviewer.core.types import SpacingKind
from cxrviewer.ui.viewer.measure import AngleMeasurement, Measurement, measure_angle, measure_distance

RULER_COLOR = QColor(255, 210, 0)


class RulerLabel(QGraphicsItem):
    """Text that keeps its screen size and stays upright under zoom, rotation and flips."""

    def __init__(self, font: QFont, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self._font = QFont(font)
        self._text = ""

    def text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        if text != self._text:
            self.prepareGeometryChange()
            self._text = text
            self.update()

    def boundingRect(self) -> QRectF:
        metrics = QFontMetricsF(self._font)
        width = metrics.horizontalAdvance(self._text)
        return QRectF(4.0, -metrics.height() - 6.0, width + 8.0, metrics.height() + 4.0)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        rect = self.boundingRect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(rect, 3.0, 3.0)
        painter.setFont(self._font)
        painter.setPen(RULER_COLOR)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._text)


class RulerItem(QGraphicsItem):
    """A measured line between two image points (item coordinates = image pixels).

    Add it as a child of the canvas's image root so it follows zoom, pan, rotation and flips.
    """

    def __init__(
        self,
        start: QPointF,
        pixel_spacing: tuple[float, float] | None,
        spacing_kind: SpacingKind,
        font: QFont,
        parent: QGraphicsItem | None = None,
    ) -> None:
        super().__init__(parent)
        self._line = QLineF(start, start)
        self._spacing = pixel_spacing
        self._kind = spacing_kind
        self._pen = QPen(RULER_COLOR, 2.0)
        self._pen.setCosmetic(True)
        self._label = RulerLabel(font, self)
        self._update_label()

    def line(self) -> QLineF:
        return QLineF(self._line)

    def set_end(self, end: QPointF) -> None:
        self.prepareGeometryChange()
        self._line.setP2(end)
        self._update_label()
        self.update()

    def measurement(self) -> Measurement:
        p1, p2 = self._line.p1(), self._line.p2()
        return measure_distance((p1.x(), p1.y()), (p2.x(), p2.y()), self._spacing, self._kind)

    def label_text(self) -> str:
        return self._label.text()

    def _update_label(self) -> None:
        """The label at the end that is leftmost on screen (after rotation and flips), drawn to its
        right: a ruler dragged to the image's right edge no longer pushes its text off the image."""
        self._label.set_text(self.measurement().text)
        p1, p2 = self._line.p1(), self._line.p2()
        if self.scene() is not None and self.mapToScene(p1).x() < self.mapToScene(p2).x():
            self._label.setPos(p1)
        else:
            self._label.setPos(p2)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value):  # noqa: N802 - Qt override
        if change == QGraphicsItem.GraphicsItemChange.ItemSceneHasChanged:
            self._update_label()
        return super().itemChange(change, value)

    def boundingRect(self) -> QRectF:
        # Cosmetic pen: pad generously in item units, since the pen width is in device pixels.
        rect = QRectF(self._line.p1(), self._line.p2()).normalized()
        scale = self._device_scale()
        pad = 8.0 / scale if scale > 0 else 8.0
        return rect.adjusted(-pad, -pad, pad, pad)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path

    def _device_scale(self) -> float:
        scene = self.scene()
        if scene is None or not scene.views():
            return 1.0
        view = scene.views()[0]
        transform = self.sceneTransform() * view.viewportTransform()
        return max(abs(transform.m11()) + abs(transform.m21()), 1e-6)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(self._pen)
        painter.drawLine(self._line)
        # End ticks, perpendicular to the line, 6 device pixels long.
        length = self._line.length()
        if length > 0:
            scale = self._device_scale()
            tick = 6.0 / scale
            normal = self._line.normalVector().unitVector()
            offset = QPointF(normal.dx() * tick, normal.dy() * tick)
            for point in (self._line.p1(), self._line.p2()):
                painter.drawLine(QLineF(point - offset, point + offset))


def _device_scale(item: QGraphicsItem) -> float:
    scene = item.scene()
    if scene is None or not scene.views():
        return 1.0
    transform = item.sceneTransform() * scene.views()[0].viewportTransform()
    return max(abs(transform.m11()) + abs(transform.m21()), 1e-6)


class AngleItem(QGraphicsItem):
    """An angle: arm end, vertex, arm end (item coordinates = image pixels), placed point by point.

    `points()` are the placed points (1–3); `set_preview` shows where the next one would go while
    the mouse moves. Add it as a child of the canvas's image root, like a ruler, so it follows zoom,
    pan, rotation and flips; its label (degrees) stays upright beside the vertex.
    """

    ARC_PX = 22.0      # radius of the arc at the vertex, in device pixels

    def __init__(self, first: QPointF, pixel_spacing: tuple[float, float] | None, font: QFont,
                 parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._points: list[QPointF] = [QPointF(first)]
        self._preview: QPointF | None = None
        self._spacing = pixel_spacing
        self._pen = QPen(RULER_COLOR, 2.0)
        self._pen.setCosmetic(True)
        self._label = RulerLabel(font, self)
        self._label.hide()

    def points(self) -> list[QPointF]:
        return [QPointF(point) for point in self._points]

    def is_complete(self) -> bool:
        return len(self._points) == 3

    def add_point(self, point: QPointF) -> None:
        if self.is_complete():
            return
        self.prepareGeometryChange()
        self._points.append(QPointF(point))
        self._preview = None
        self._update_label()
        self.update()

    def set_preview(self, point: QPointF | None) -> None:
        if self.is_complete():
            return
        self.prepareGeometryChange()
        self._preview = None if point is None else QPointF(point)
        self._update_label()
        self.update()

    def _drawn(self) -> list[QPointF]:
        return self._points + ([self._preview] if self._preview is not None else [])

    def measurement(self) -> AngleMeasurement | None:
        drawn = self._drawn()
        if len(drawn) < 3:
            return None
        first, vertex, second = drawn[:3]
        return measure_angle((first.x(), first.y()), (vertex.x(), vertex.y()), (second.x(), second.y()),
                             self._spacing)

    def label_text(self) -> str:
        return self._label.text() if self._label.isVisible() else ""

    def _update_label(self) -> None:
        measured = self.measurement()
        if measured is None:
            self._label.hide()
            return
        self._label.set_text(measured.text)
        self._label.setPos(self._drawn()[1])
        self._label.show()

    def boundingRect(self) -> QRectF:
        drawn = self._drawn()
        xs = [p.x() for p in drawn]
        ys = [p.y() for p in drawn]
        scale = _device_scale(self)
        pad = (self.ARC_PX + 8.0) / scale
        return QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)).adjusted(-pad, -pad, pad, pad)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(self._pen)
        drawn = self._drawn()
        scale = _device_scale(self)
        for a, b in zip(drawn, drawn[1:]):
            painter.drawLine(QLineF(a, b))
        dot = 3.0 / scale
        for point in self._points:
            painter.drawEllipse(point, dot, dot)
        if len(drawn) >= 3:
            painter.drawPolyline(self._arc(drawn[0], drawn[1], drawn[2], self.ARC_PX / scale))

    @staticmethod
    def _arc(first: QPointF, vertex: QPointF, second: QPointF, radius: float) -> list[QPointF]:
        """Points of the arc from arm one to arm two the short way round (item coordinates)."""
        ax, ay = first.x() - vertex.x(), first.y() - vertex.y()
        bx, by = second.x() - vertex.x(), second.y() - vertex.y()
        if math.hypot(ax, ay) == 0 or math.hypot(bx, by) == 0:
            return []
        start = math.atan2(ay, ax)
        sweep = math.atan2(ax * by - ay * bx, ax * bx + ay * by)
        radius = min(radius, math.hypot(ax, ay), math.hypot(bx, by))
        steps = 24
        return [QPointF(vertex.x() + radius * math.cos(start + sweep * i / steps),
                        vertex.y() + radius * math.sin(start + sweep * i / steps)) for i in range(steps + 1)]
