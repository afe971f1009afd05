"""The heat-map overlay on the canvas: a QGraphicsPixmapItem fed from a cached CAM index image.

Cheap by design (DESIGN.md, "Overlays are cheap"):

* opacity       → `QGraphicsItem.setOpacity`, nothing is recoloured;
* colour map, threshold, heat map ↔ contours → one 256-entry LUT lookup on the cached
  uint8 index image (`core.xai.overlay.colorize` / `contour_rgba`), no model call;
* the index image is made once per CAM and normalisation (by `AiController`) at
  `core.xai.overlay_style.overlay_shape` (at most 1024 pixels a side); the item transform
  scales it onto the image.

The item is a child of the canvas' image root (`ImageCanvas.add_overlay_item`), whose
coordinates are image pixels, so it stays registered under zoom, pan, rotation and flips.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem

from cxrviewer.core.xai.overlay import colormap_lut
from cxrviewer.core.xai.overlay_style import (
    DEFAULT_COLORMAP,
    DEFAULT_OPACITY,
    DEFAULT_THRESHOLD,
    HEATMAP,
    STYLES,
    overlay_rgba,
)


class CamOverlayItem(QGraphicsPixmapItem):
    """A CAM heat map registered to the image; knows which image (`image_key`) it belongs to."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self.setOpacity(DEFAULT_OPACITY)
        self._index: np.ndarray | None = None
        self._image_shape: tuple[int, int] = (0, 0)
        self._image_key = ""
        self._colormap = DEFAULT_COLORMAP
        self._threshold = DEFAULT_THRESHOLD
        self._style = HEATMAP
        self._buffer: np.ndarray | None = None
        self._rgba: np.ndarray | None = None
        self.recolour_count = 0   # how often the LUT was applied (tests and diagnostics)

    # ------------------------------------------------------------------------- content
    def set_index_image(self, index: np.ndarray, image_shape: tuple[int, int], image_key: str) -> None:
        """Show a new uint8 index image (any size) stretched over an image of `image_shape`."""
        index = np.ascontiguousarray(index, dtype=np.uint8)
        if index.ndim != 2 or index.size == 0:
            raise ValueError(f"an overlay index image must be 2-D and non-empty, got {index.shape}")
        self._index = index
        self._image_shape = (int(image_shape[0]), int(image_shape[1]))
        self._image_key = image_key
        rows, columns = index.shape
        self.setTransform(QTransform.fromScale(self._image_shape[1] / columns, self._image_shape[0] / rows))
        self._recolour()

    def clear(self) -> None:
        """Remove the map (the item stays on the canvas, empty)."""
        self._index = None
        self._rgba = None
        self._image_key = ""
        self.setPixmap(QPixmap())

    def has_overlay(self) -> bool:
        return self._index is not None

    def image_key(self) -> str:
        """The `image_key` of the image this map was computed for ("" when empty)."""
        return self._image_key

    def index_image(self) -> np.ndarray | None:
        return self._index

    def rgba(self) -> np.ndarray | None:
        """The RGBA array last drawn (overlay resolution), for tests and export."""
        return self._rgba

    # --------------------------------------------------------------------------- styling
    def colormap(self) -> str:
        return self._colormap

    def threshold(self) -> float:
        return self._threshold

    def style(self) -> str:
        return self._style

    def set_colormap(self, name: str) -> None:
        colormap_lut(name)   # raises ValueError for an unknown name before anything changes
        if name != self._colormap:
            self._colormap = name
            self._recolour()

    def set_threshold(self, threshold: float) -> None:
        threshold = float(np.clip(threshold, 0.0, 1.0))
        if threshold != self._threshold:
            self._threshold = threshold
            self._recolour()

    def set_style(self, style: str) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown overlay style {style!r}; choose one of {', '.join(STYLES)}")
        if style != self._style:
            self._style = style
            self._recolour()

    def _recolour(self) -> None:
        index = self._index
        if index is None:
            return
        if self._style == HEATMAP and (self._buffer is None or self._buffer.shape[:2] != index.shape):
            self._buffer = np.empty(index.shape + (4,), np.uint8)
        rgba = overlay_rgba(index, self._colormap, self._threshold, self._style,
                            out=self._buffer if self._style == HEATMAP else None)
        rows, columns = index.shape
        image = QImage(rgba.data, columns, rows, columns * 4, QImage.Format.Format_RGBA8888)
        self.setPixmap(QPixmap.fromImage(image))   # fromImage copies: the buffer can be reused
        self._rgba = rgba
        self.recolour_count += 1
