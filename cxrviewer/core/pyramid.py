"""The display pyramid of an image, computed off the GUI thread (Qt-free).

The canvas renders at a power-of-two level matched to the zoom. For a 100-megapixel image,
area-averaging the full float32 pixels down to the fitted level and finding their full range
took ~100 ms of the GUI thread on an idle machine and 0.46–0.50 s on a loaded 2-core one. The
loader thread now builds every level (each from the one above it: cheap) and the full range
once, right after decoding; the canvas only windows a ready, small array.

An `XrayImage` is frozen and shared, so the pyramid travels beside it: `attach(image, pyramid)`
on the loader thread, `pyramid_of(image)` on the GUI thread (a registry keyed by the image
object, emptied when the image is garbage-collected).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from cxrviewer.core.imaging import full_range_window
from cxrviewer.core.types import Window, XrayImage, readonly

MAX_LEVEL = 64
PYRAMID_MIN_PIXELS = 4_000_000   # smaller images render in a few ms on the GUI thread: no pyramid


@dataclass(frozen=True)
class DisplayPyramid:
    """Area-averaged copies of an image's pixels at levels 2, 4, … (level 1 is the image itself)."""

    full_window: Window
    levels: Mapping[int, np.ndarray]

    @property
    def nbytes(self) -> int:
        return sum(int(level.nbytes) for level in self.levels.values())


def level_size(shape: tuple[int, int], level: int) -> tuple[int, int]:
    """(width, height) of `level`, as cv2.resize wants it; the canvas uses the same rounding."""
    height, width = shape
    return max(1, round(width / level)), max(1, round(height / level))


def downsample(pixels: np.ndarray, shape: tuple[int, int], level: int) -> np.ndarray:
    """`pixels` (any level) area-averaged to the size of `level` of an image of `shape`."""
    source = np.ascontiguousarray(pixels, dtype=np.float32)
    return cv2.resize(source, level_size(shape, level), interpolation=cv2.INTER_AREA)


def build_pyramid(pixels: np.ndarray, max_level: int = MAX_LEVEL) -> DisplayPyramid:
    """Every power-of-two level down to 2 × 2 pixels (or `max_level`), each from the previous one."""
    shape = (int(pixels.shape[0]), int(pixels.shape[1]))
    levels: dict[int, np.ndarray] = {}
    previous = pixels
    level = 2
    while level <= max_level and shape[0] // level >= 2 and shape[1] // level >= 2:
        # From the previous level: 4 source pixels per output pixel, not level² of them.
        current = readonly(downsample(previous, shape, level))
        levels[level] = current
        previous = current
        level *= 2
    return DisplayPyramid(full_range_window(pixels), MappingProxyType(levels))


_REGISTRY: dict[int, tuple[weakref.ref[Any], DisplayPyramid]] = {}
_LOCK = threading.Lock()


def attach(image: XrayImage, pyramid: DisplayPyramid) -> None:
    """Remember `pyramid` for this image object (until the image is collected)."""
    key = id(image)

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        with _LOCK:
            entry = _REGISTRY.get(key)
            if entry is not None and entry[0] is _ref:
                del _REGISTRY[key]

    with _LOCK:
        _REGISTRY[key] = (weakref.ref(image, forget), pyramid)


def pyramid_of(image: XrayImage) -> DisplayPyramid | None:
    with _LOCK:
        entry = _REGISTRY.get(id(image))
    if entry is None or entry[0]() is not image:
        return None
    return entry[1]


def prepare_display(image: XrayImage) -> DisplayPyramid | None:
    """Build and attach the pyramid of a large image (None for a small one); returns it."""
    if image.pixels.size < PYRAMID_MIN_PIXELS:
        return None
    pyramid = build_pyramid(image.pixels)
    attach(image, pyramid)
    return pyramid
