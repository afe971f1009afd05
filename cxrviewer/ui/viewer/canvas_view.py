"""The view half of ImageCanvas: the image root, overlays, zoom, orientation and coordinates.

`ViewTransforms` holds the maths of how the image root sits in the scene and the scene in the
viewport (zoom = view transform, rotation/flip = the root's transform, pan = scroll bars), and
where overlays register. `ImageCanvas` (canvas.py) builds the scene and the state these methods
use, and adds rendering, windowing, tools and events.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from cxrviewer.core.types import XrayImage

ZOOM_STEP = 1.25
MIN_ZOOM = 0.02
MAX_ZOOM = 32.0

Orientation = tuple[int, int, int, int]   # 2×2 integer matrix (a, b, c, d): x' = ax+by, y' = cx+dy
IDENTITY: Orientation = (1, 0, 0, 1)
_ROTATE_CW: Orientation = (0, -1, 1, 0)
_ROTATE_CCW: Orientation = (0, 1, -1, 0)
_FLIP_H: Orientation = (-1, 0, 0, 1)
_FLIP_V: Orientation = (1, 0, 0, -1)


def _compose(op: Orientation, m: Orientation) -> Orientation:
    """op @ m for 2×2 matrices stored row-major."""
    a, b, c, d = op
    e, f, g, h = m
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def orientation_summary(m: Orientation) -> tuple[int, bool]:
    """(clockwise rotation in degrees, flipped) describing orientation matrix `m`.

    A flipped orientation is described as "flip horizontally, then rotate".
    """
    a, b, c, d = m
    flipped = a * d - b * c < 0
    if flipped:
        a, b, c, d = _compose(m, _FLIP_H)
    angles = {(1, 0): 0, (0, 1): 90, (-1, 0): 180, (0, -1): 270}
    return angles.get((a, c), 0), flipped


@dataclass(frozen=True)
class PixelReadout:
    """The raw pixel under the cursor: image column x, row y, value in image units."""

    x: int
    y: int
    value: float

    @property
    def text(self) -> str:
        value = self.value
        if not math.isfinite(value):
            shown = str(value)
        elif float(value).is_integer() and abs(value) < 1e9:
            shown = f"{value:.0f}"
        else:
            shown = f"{value:.6g}"
        return f"x {self.x}  y {self.y}  value {shown}"


class ImageRoot(QGraphicsRectItem):
    """Invisible parent of the image and everything registered to it (overlays, rulers)."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(Qt.PenStyle.NoPen)
        self.setBrush(Qt.BrushStyle.NoBrush)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)


class ViewTransforms(QGraphicsView):
    """Overlays, zoom, rotation/flip and viewport ↔ image coordinates, for `ImageCanvas`."""

    zoom_changed = Signal(float)          # device pixels per image pixel
    view_changed = Signal()               # orientation / invert / reset

    # Set up by ImageCanvas.__init__.
    _scene: QGraphicsScene
    _root: QGraphicsRectItem
    _pixmap_item: QGraphicsPixmapItem
    _image: XrayImage | None
    _orientation: Orientation
    _fit_mode: bool

    def _schedule_render_if_level_changed(self) -> None:
        raise NotImplementedError   # ImageCanvas renders

    # ----------------------------------------------------------------------- overlays
    def image_root(self) -> QGraphicsItem:
        """Parent item in image-pixel coordinates; carries rotation and flips."""
        return self._root

    def image_item(self) -> QGraphicsPixmapItem:
        return self._pixmap_item

    def add_overlay_item(self, item: QGraphicsItem, z: float = 10.0) -> QGraphicsItem:
        """Register `item` on top of the image (coordinates: image pixels). Returns `item`."""
        item.setParentItem(self._root)
        item.setZValue(z)
        return item

    def remove_overlay_item(self, item: QGraphicsItem) -> None:
        if item.parentItem() is self._root:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)

    # -------------------------------------------------------------------------------- zoom
    def zoom(self) -> float:
        """Device pixels per image pixel (1.0 = one image pixel per screen pixel)."""
        return self.transform().m11() * self._device_ratio()

    def is_fit_mode(self) -> bool:
        return self._fit_mode

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to `zoom`, keeping the scene point under viewport point `anchor` still."""
        if self._image is None:
            return
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_point = self._viewport_to_scene(anchor)
        scale = zoom / self._device_ratio()
        self.setTransform(QTransform.fromScale(scale, scale))
        self._ensure_scene_margin()
        self._keep_scene_point_at(scene_point, anchor)
        self._fit_mode = False
        self._after_zoom()

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP, anchor)

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP, anchor)

    def zoom_actual_size(self) -> None:
        """1:1 — one image pixel per device pixel, about the view centre."""
        self.set_zoom(1.0)

    def fit_to_window(self) -> None:
        """Fit the whole (rotated) image in the view; stays fitted on resize until zoomed."""
        self._fit_mode = True
        if self._image is None:
            return
        bounds = self._image_scene_bounds()
        viewport = self.viewport().rect()
        if bounds.isEmpty() or viewport.isEmpty():
            return
        scale = min(viewport.width() / bounds.width(), viewport.height() / bounds.height())
        scale = min(max(scale * self._device_ratio(), MIN_ZOOM), MAX_ZOOM) / self._device_ratio()
        self.setTransform(QTransform.fromScale(scale, scale))
        self._ensure_scene_margin()
        self.centerOn(bounds.center())
        self._after_zoom()

    def _after_zoom(self) -> None:
        self._schedule_render_if_level_changed()
        self.zoom_changed.emit(self.zoom())
        self.viewport().update()

    # ------------------------------------------------------------------------- orientation
    def orientation(self) -> Orientation:
        return self._orientation

    def rotate_clockwise(self) -> None:
        self._reorient(_ROTATE_CW)

    def rotate_counterclockwise(self) -> None:
        self._reorient(_ROTATE_CCW)

    def flip_horizontal(self) -> None:
        self._reorient(_FLIP_H)

    def flip_vertical(self) -> None:
        self._reorient(_FLIP_V)

    def _reorient(self, op: Orientation) -> None:
        """Apply a screen-space rotation/flip, keeping the image centre where it is on screen."""
        if self._image is None:
            return
        center = self.mapToScene(self.viewport().rect().center())
        self._orientation = _compose(op, self._orientation)
        self._apply_orientation()
        self._scene_rect_for_image()
        if self._fit_mode:
            self.fit_to_window()
        else:
            self.centerOn(center)
        self.view_changed.emit()
        self.viewport().update()

    def _apply_orientation(self) -> None:
        if self._image is None:
            self._root.setTransform(QTransform())
            return
        height, width = self._image.shape
        cx, cy = width / 2.0, height / 2.0
        a, b, c, d = self._orientation
        dx = cx - a * cx - b * cy
        dy = cy - c * cx - d * cy
        # QTransform uses row vectors: x' = m11 x + m21 y + dx, y' = m12 x + m22 y + dy.
        self._root.setTransform(QTransform(a, c, b, d, dx, dy))

    # ----------------------------------------------------------------------- coordinates
    def viewport_to_image(self, point: QPointF | QPoint) -> QPointF:
        """Continuous image coordinates (x = column, y = row) of a viewport point."""
        return self._root.mapFromScene(self._viewport_to_scene(QPointF(point)))

    def image_to_viewport(self, point: QPointF) -> QPointF:
        return self.viewportTransform().map(self._root.mapToScene(QPointF(point)))

    def pixel_at(self, point: QPointF | QPoint) -> PixelReadout | None:
        """The raw pixel under viewport point `point`, or None off the image."""
        if self._image is None:
            return None
        image_point = self.viewport_to_image(point)
        x, y = math.floor(image_point.x()), math.floor(image_point.y())
        height, width = self._image.shape
        if 0 <= x < width and 0 <= y < height:
            return PixelReadout(x, y, float(self._image.pixels[y, x]))
        return None

    def _viewport_to_scene(self, point: QPointF) -> QPointF:
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(point))

    def _image_scene_bounds(self) -> QRectF:
        if self._image is None:
            return QRectF()
        height, width = self._image.shape
        return self._root.mapRectToScene(QRectF(0, 0, width, height))

    def _scene_rect_for_image(self) -> None:
        bounds = self._image_scene_bounds()
        self._scene.setSceneRect(bounds)
        self._ensure_scene_margin()

    def _ensure_scene_margin(self) -> None:
        """Grow the scene rect so the image can be panned to any viewport edge at this zoom."""
        bounds = self._image_scene_bounds()
        if bounds.isEmpty():
            return
        scale = max(self.transform().m11(), 1e-9)
        margin_x = self.viewport().width() / scale + bounds.width()
        margin_y = self.viewport().height() / scale + bounds.height()
        wanted = bounds.adjusted(-margin_x, -margin_y, margin_x, margin_y)
        current = self._scene.sceneRect()
        if not current.contains(wanted):
            self._scene.setSceneRect(current.united(wanted))

    def _keep_scene_point_at(self, scene_point: QPointF, viewport_point: QPointF) -> None:
        now = self.viewportTransform().map(scene_point)
        delta = now - viewport_point
        self._scroll_by(delta.x(), delta.y())

    def _scroll_by(self, dx: float, dy: float) -> None:
        hbar, vbar = self.horizontalScrollBar(), self.verticalScrollBar()
        hbar.setValue(hbar.value() + round(dx))
        vbar.setValue(vbar.value() + round(dy))

    def _device_ratio(self) -> float:
        return float(self.devicePixelRatioF()) or 1.0
