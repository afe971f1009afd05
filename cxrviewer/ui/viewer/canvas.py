"""ImageCanvas: the radiograph view (window/level, zoom, pan, rotate, flip, invert, ruler).

Like pyqtgraph's ImageItem, the canvas keeps the raw float pixels and the current window and
renders an 8-bit pixmap lazily through `imaging.apply_window`:

* Rendering happens at a pyramid level matched to the zoom (area-averaged by powers of two),
  so a 3000×3000 image shown at 25 % windows ~0.5 MP, not 9 MP, per update. For a large image
  the loader thread has built every level and the full range already (`core.pyramid`): the GUI
  thread only windows a small ready array (a 100-megapixel image no longer stalls it).
* Right-drag window changes are throttled to the paint rate: mouse moves only record the
  wanted window; a single-shot timer renders the newest one at most once per frame.

Scene layout (what stays registered with what)::

    scene
      └─ image root  (carries rotation/flip about the image centre; coordinates = image pixels)
           ├─ pixmap item  (the rendered image; scaled so it always spans 0..W × 0..H)
           ├─ overlays     (add_overlay_item: e.g. a CAM heat-map pixmap, z > 0)
           └─ rulers
    view transform = zoom only; scroll bars = pan.

An overlay added with `add_overlay_item` is a child of the image root, so it follows zoom,
pan, rotation and flips. Its coordinates are image pixels: a 7×7 CAM pixmap is registered by
`item.setTransform(QTransform.fromScale(W / 7, H / 7))`.

The image root, overlay registration, zoom, orientation and coordinate maths live in
`canvas_view.ViewTransforms`, the base class; this module adds rendering, windowing, tools and events.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from cxrviewer.core.imaging import apply_window, full_range_window
from cxrviewer.core.pyramid import downsample, pyramid_of
from cxrviewer.core.types import Window, XrayImage
from cxrviewer.ui.viewer.canvas_view import IDENTITY, ZOOM_STEP, ImageRoot, ViewTransforms
from cxrviewer.ui.viewer.canvas_view import Orientation as Orientation
from cxrviewer.ui.viewer.canvas_view import PixelReadout as PixelReadout
from cxrviewer.ui.viewer.canvas_view import orientation_summary as orientation_summary
from cxrviewer.ui.viewer.corner_text import (
    CornerText,
    ViewState,
    build_corner_text,
    corner_font,
    corner_text_bounds,
    paint_corner_text,
)
from cxrviewer.ui.viewer.measure import Measurement
from cxrviewer.ui.viewer.ruler import RulerItem
from cxrviewer.ui.widgets import make

WINDOW_DRAG_PIXELS = 256.0   # dragging this far doubles the width / moves the level one width
RENDER_INTERVAL_MS = 16      # throttle for interactive re-renders (about one frame at 60 Hz)


class ImageCanvas(ViewTransforms):
    """Shows one XrayImage with the viewing tools a radiologist expects."""

    window_changed = Signal(object)       # Window
    pixel_hovered = Signal(object)        # PixelReadout, or None when off the image
    measurement_added = Signal(object)    # Measurement
    ruler_toggled = Signal(bool)
    measurements_cleared = Signal()      # rulers gone (Delete, a new image, Reset): other tools clear theirs

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._root = ImageRoot()
        self._scene.addItem(self._root)
        self._pixmap_item = QGraphicsPixmapItem(self._root)
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self._pixmap_item.setZValue(0)

        self.setBackgroundBrush(QColor(0, 0, 0))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setAcceptDrops(False)   # files dropped here go to the main window
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(64, 64)

        self._image: XrayImage | None = None
        self._window: Window | None = None
        self._min_width = 1e-6
        self._user_invert = False
        self._orientation: Orientation = IDENTITY
        self._fit_mode = True
        self._anonymise = False
        self._title = ""
        self._blinded = False   # a practice packet: the corner text shows no descriptive header field
        self._message = ""
        self._levels: dict[int, np.ndarray] = {}
        self._rendered_key: tuple | None = None
        self._display: np.ndarray | None = None
        self._rulers: list[RulerItem] = []
        self._ruler_enabled = False
        self._font = corner_font(QApplication.font())

        # Interaction state (tracked here, not from event.buttons(), so synthetic events work).
        self._drag: str | None = None
        self._drag_start = QPointF()
        self._drag_window: Window | None = None
        self._drag_scroll = (0, 0)
        self._active_ruler: RulerItem | None = None

        self._render_timer = make.timer(self, self._on_render_timer_timeout, RENDER_INTERVAL_MS, single_shot=True)

    # ----------------------------------------------------------------------------- image
    def image(self) -> XrayImage | None:
        return self._image

    def set_image(self, image: XrayImage | None, *, keep_view: bool = False) -> None:
        """Show `image` at its default window, fitted (or keep window/zoom/orientation).

        `keep_view` is for another frame of the same series: window, zoom, orientation and
        invert stay as the user set them when the size matches.
        """
        previous = self._image
        same_size = previous is not None and image is not None and previous.shape == image.shape
        keep = keep_view and same_size
        self._image = image
        self._levels = {}
        self._rendered_key = None
        self._message = ""
        self.clear_measurements()
        if image is None:
            self._window = None
            self._display = None
            self._pixmap_item.setPixmap(QPixmap())
            self._root.setRect(QRectF())
            self.viewport().update()
            self.pixel_hovered.emit(None)   # no stale "x … y … value" from the last image
            return
        height, width = image.shape
        self._root.setRect(QRectF(0, 0, width, height))
        pyramid = pyramid_of(image)   # built by the loader thread for a large image
        if pyramid is not None:
            self._levels = dict(pyramid.levels)
        full = pyramid.full_window if pyramid is not None else full_range_window(image.pixels)
        self._min_width = max(full.width * 1e-3, 1e-6)
        if not keep:
            self._window = image.default_window
            self._user_invert = False
            self._orientation = IDENTITY
            self._apply_orientation()
            self._scene_rect_for_image()
            self.fit_to_window()
            self._render_now()
        else:
            self._scene_rect_for_image()
            self._render_now()
        self.window_changed.emit(self._window)
        self.view_changed.emit()
        self.pixel_hovered.emit(self._pixel_under_cursor())   # the new image's value, not the old one's

    def _pixel_under_cursor(self) -> PixelReadout | None:
        viewport = self.viewport()
        position = viewport.mapFromGlobal(QCursor.pos())
        return self.pixel_at(QPointF(position)) if viewport.rect().contains(position) and viewport.underMouse() else None

    def set_message(self, message: str) -> None:
        """Centre text shown over the view (e.g. why an image could not be opened)."""
        self._message = message
        self.viewport().update()

    def message(self) -> str:
        return self._message

    def display_array(self) -> np.ndarray | None:
        """The 8-bit array currently shown (at the current pyramid level)."""
        return self._display

    def display_level(self) -> int:
        return self._rendered_key[0] if self._rendered_key else 1

    # ------------------------------------------------------------------------ window/level
    def window(self) -> Window | None:
        return self._window

    def set_window(self, window: Window, *, interactive: bool = False) -> None:
        """Change the window; interactive changes render at most once per frame."""
        if self._image is None:
            return
        window = Window(float(window.center), max(float(window.width), self._min_width))
        if window == self._window:
            return
        self._window = window
        if interactive:
            self._schedule_render()
        else:
            self._render_now()
        self.window_changed.emit(window)
        self.viewport().update()

    def reset_window(self) -> None:
        if self._image is not None:
            self.set_window(self._image.default_window)

    # ------------------------------------------------------------------------------ invert
    def is_inverted(self) -> bool:
        """The user's invert toggle (independent of MONOCHROME1)."""
        return self._user_invert

    def effective_invert(self) -> bool:
        base = self._image.invert_for_display if self._image is not None else False
        return base ^ self._user_invert

    def set_inverted(self, inverted: bool) -> None:
        if inverted == self._user_invert:
            return
        self._user_invert = inverted
        self._render_now()
        self.view_changed.emit()

    def reset_view(self) -> None:
        """Default window, no invert, no rotation/flip, fitted; measurements cleared."""
        if self._image is None:
            return
        self._user_invert = False
        self._orientation = IDENTITY
        self._apply_orientation()
        self._scene_rect_for_image()
        self.clear_measurements()
        self._window = self._image.default_window
        self.fit_to_window()
        self._render_now()
        self.window_changed.emit(self._window)
        self.view_changed.emit()

    # --------------------------------------------------------------------------- ruler
    def is_ruler_enabled(self) -> bool:
        return self._ruler_enabled

    def set_ruler_enabled(self, enabled: bool) -> None:
        if enabled == self._ruler_enabled:
            return
        self._ruler_enabled = enabled
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if enabled else Qt.CursorShape.ArrowCursor)
        self.ruler_toggled.emit(enabled)

    def rulers(self) -> list[RulerItem]:
        return list(self._rulers)

    def measurements(self) -> list[Measurement]:
        return [ruler.measurement() for ruler in self._rulers]

    def clear_measurements(self) -> None:
        for ruler in self._rulers:
            if ruler.scene() is not None:
                ruler.scene().removeItem(ruler)
        self._rulers = []
        self._active_ruler = None
        self.viewport().update()
        self.measurements_cleared.emit()

    # ------------------------------------------------------------------------ corner text
    def set_anonymise(self, anonymise: bool) -> None:
        self._anonymise = anonymise
        self.viewport().update()

    def is_anonymised(self) -> bool:
        return self._anonymise

    def corner_text(self) -> CornerText:
        if self._image is None:
            return CornerText()
        rotation, flipped = orientation_summary(self._orientation)
        height, width = self._image.shape
        state = ViewState(window=self._window, zoom=self.zoom(), inverted=self._user_invert,
                          rotation_degrees=rotation, flipped=flipped, frame_index=self._image.frame_index,
                          frame_count=self._image.frame_count, width=width, height=height)
        return build_corner_text(self._image.metadata, state, anonymise=self._anonymise, title=self._title, blinded=self._blinded)

    def set_blinded(self, blinded: bool) -> None:
        self._blinded = blinded
        self.viewport().update()

    def set_title(self, title: str) -> None:
        """A first line, top left, naming the image ("" for none): a practice case's number."""
        self._title = title
        self.viewport().update()

    def corner_text_bounds(self) -> dict[str, QRectF]:
        """Where the corner text is drawn now (viewport coordinates), by corner name."""
        return corner_text_bounds(QRectF(self.viewport().rect()), self.corner_text(), self._font)

    def set_overlay_font(self, font: QFont) -> None:
        self._font = corner_font(font)
        self.viewport().update()

    # ------------------------------------------------------------------------- rendering
    def _wanted_level(self) -> int:
        """Largest power-of-two downsampling that still has ≥ 1 pyramid pixel per device pixel."""
        zoom = self.zoom()
        if self._image is None or zoom >= 1.0 or zoom <= 0:
            return 1
        level = 1
        while level * 2 * zoom <= 1.0 and level < 64:
            level *= 2
        height, width = self._image.shape
        while level > 1 and (width // level < 2 or height // level < 2):
            level //= 2
        return level

    def _level_pixels(self, level: int) -> np.ndarray:
        assert self._image is not None
        if level == 1:
            return self._image.pixels
        cached = self._levels.get(level)
        if cached is None:   # no pyramid from the loader (a small image, or one set directly)
            cached = downsample(self._image.pixels, self._image.shape, level)
            self._levels[level] = cached
        return cached

    def _render_key(self) -> tuple:
        return (self._wanted_level(), self._window, self.effective_invert())

    def _render_now(self) -> None:
        """Re-render the 8-bit pixmap if the level, window or polarity changed."""
        self._render_timer.stop()
        if self._image is None or self._window is None:
            return
        key = self._render_key()
        if key == self._rendered_key:
            return
        level, window, invert = key
        pixels = self._level_pixels(level)
        display = np.ascontiguousarray(apply_window(pixels, window, invert=invert))
        rows, cols = display.shape
        qimage = QImage(display.data, cols, rows, cols, QImage.Format.Format_Grayscale8)
        self._pixmap_item.setPixmap(QPixmap.fromImage(qimage))
        height, width = self._image.shape
        self._pixmap_item.setTransform(QTransform.fromScale(width / cols, height / rows))
        self._display = display
        self._rendered_key = key
        self.viewport().update()

    def _schedule_render(self) -> None:
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _schedule_render_if_level_changed(self) -> None:
        if self._image is not None and self._render_key() != self._rendered_key:
            self._schedule_render()

    def _on_render_timer_timeout(self) -> None:
        self._render_now()

    def flush_render(self) -> None:
        """Render any pending change now (tests, screenshots)."""
        self._render_now()

    # ------------------------------------------------------------------------------ events
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        painter.save()
        painter.resetTransform()
        viewport = QRectF(self.viewport().rect())
        paint_corner_text(painter, viewport, self.corner_text(), self._font)
        if self._message or self._image is None:
            message = self._message or "Open an image (File ▸ Open) or drop files here"
            painter.setFont(self._font)
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(
                viewport.adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                message,
            )
        painter.restore()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.viewport().update()   # corner text is drawn in viewport coordinates

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._image is None:
            return
        self._ensure_scene_margin()
        if self._fit_mode:
            self.fit_to_window()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._image is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        self.set_zoom(self.zoom() * ZOOM_STEP**steps, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._image is None:
            return super().mousePressEvent(event)
        button = event.button()
        position = event.position()
        self._drag_start = position
        self._drag_scroll = (self.horizontalScrollBar().value(), self.verticalScrollBar().value())
        if button == Qt.MouseButton.RightButton:
            self._drag = "window"
            self._drag_window = self._window
        elif button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and not self._ruler_enabled
        ):
            self._drag = "pan"
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.LeftButton and self._ruler_enabled:
            self._drag = "ruler"
            ruler = RulerItem(
                self.viewport_to_image(position),
                self._image.pixel_spacing,
                self._image.spacing_kind,
                self._font,
                self._root,
            )
            ruler.setZValue(100)
            self._active_ruler = ruler
            self._rulers.append(ruler)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        position = event.position()
        if self._drag == "window" and self._drag_window is not None:
            delta = position - self._drag_start
            start = self._drag_window
            width = start.width * 2.0 ** (delta.x() / WINDOW_DRAG_PIXELS)
            center = start.center + start.width * delta.y() / WINDOW_DRAG_PIXELS
            self.set_window(Window(center, width), interactive=True)
        elif self._drag == "pan":
            # From the press position, not step by step, so rounding does not accumulate.
            delta = position - self._drag_start
            self.horizontalScrollBar().setValue(self._drag_scroll[0] - round(delta.x()))
            self.verticalScrollBar().setValue(self._drag_scroll[1] - round(delta.y()))
            self._fit_mode = False
        elif self._drag == "ruler" and self._active_ruler is not None:
            self._active_ruler.set_end(self.viewport_to_image(position))
            self.viewport().update()
        self.pixel_hovered.emit(self.pixel_at(position))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        drag, self._drag = self._drag, None
        if drag == "window":
            self._render_now()   # the last window of a drag always gets drawn
        elif drag == "pan":
            self.viewport().setCursor(
                Qt.CursorShape.CrossCursor if self._ruler_enabled else Qt.CursorShape.ArrowCursor
            )
        elif drag == "ruler" and self._active_ruler is not None:
            ruler, self._active_ruler = self._active_ruler, None
            ruler.set_end(self.viewport_to_image(event.position()))
            if ruler.line().length() < 1.0:   # a click, not a drag: drop it
                self._rulers.remove(ruler)
                if ruler.scene() is not None:
                    ruler.scene().removeItem(ruler)
            else:
                self.measurement_added.emit(ruler.measurement())
            self.viewport().update()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and not self._ruler_enabled:
            self.fit_to_window()
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self.pixel_hovered.emit(None)
        super().leaveEvent(event)
