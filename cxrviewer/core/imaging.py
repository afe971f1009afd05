"""Window/level and display transforms (numpy; OpenCV for the thumbnail resize)."""
from __future__ import annotations

import cv2
import numpy as np

from cxrviewer.core.types import Window, XrayImage


def apply_window(pixels: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Map `pixels` through a linear window to 8-bit display values (0 = black).

    Linear mapping of [low, high] to [0, 255] with clipping outside; `invert` flips the
    result (MONOCHROME1, or the user's invert toggle).
    """
    width = max(float(window.width), 1e-6)
    low = float(window.center) - width / 2.0
    scaled = (np.asarray(pixels, dtype=np.float32) - np.float32(low)) * np.float32(255.0 / width)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    out = (scaled + 0.5).astype(np.uint8)
    if invert:
        np.subtract(255, out, out=out)
    return out


def default_display(image: XrayImage) -> np.ndarray:
    """The 8-bit gray image exactly as the viewer shows it on opening (default window, polarity)."""
    return apply_window(image.pixels, image.default_window, invert=image.invert_for_display)


def thumbnail(image: XrayImage, max_side: int = 96) -> np.ndarray:
    """The default display at most `max_side` pixels on its long side (uint8, aspect kept).

    Samples the stored values on a grid (about four per output pixel in each direction),
    averages them down and windows the few thousand left: a 9-megapixel radiograph costs
    about a millisecond, not a full-size windowing pass.
    """
    pixels = np.asarray(image.pixels)
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(height, width, 1))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    step = max(1, int(1.0 / (scale * 4.0)))    # keep ~4 samples per output pixel for the average
    pixels = np.ascontiguousarray(pixels[::step, ::step], dtype=np.float32)
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else pixels
    small = np.nan_to_num(small, nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(apply_window(small, image.default_window, invert=image.invert_for_display))


PERCENTILE_SAMPLE = 1_000_000


def full_range_window(pixels: np.ndarray) -> Window:
    """A window covering every finite value in `pixels` (width at least 1)."""
    if pixels.size == 0:
        return Window(0.5, 1.0)
    low, high = float(pixels.min()), float(pixels.max())
    if not (np.isfinite(low) and np.isfinite(high)):   # NaN or ±inf somewhere: mask (copies)
        finite = pixels[np.isfinite(pixels)]
        if finite.size == 0:
            return Window(0.5, 1.0)
        low, high = float(finite.min()), float(finite.max())
    width = max(high - low, 1.0)
    return Window(low + width / 2.0, width)


def percentile_window(pixels: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> Window:
    """Auto-window from robust percentiles, for files whose stored window is missing or flat.

    The percentiles come from an even sample of at most ~1 M pixels (a strided view; only the
    sample is checked for NaN/inf), which moves them by far less than one display grey level.
    """
    flat = pixels.reshape(-1)
    sample = flat[:: max(1, flat.size // PERCENTILE_SAMPLE)]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return full_range_window(pixels)   # the sample missed the few finite pixels, if any
    low, high = np.percentile(finite, [low_pct, high_pct])
    if high - low < 1e-6:
        return full_range_window(pixels)
    return Window(float((low + high) / 2.0), float(high - low))
