"""Window/level and display transforms (numpy; OpenCV for the thumbnail resize)."""
from __future__ import annotations

import cv2
import numpy as np

from cxrviewer.core.types import Window, WindowPreset, XrayImage


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
    return Window.spanning(low, high, min_width=1.0)


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
    return Window.spanning(float(low), float(high))


# Chest windows. In Hounsfield units (CT: the modality LUT gives calibrated HU) they are the
# textbook ones. A radiograph's values are detector exposure, not HU, so W1500/L−600 would mean
# nothing there: the same three windows are placed on the image's own robust range instead
# (fractions of the 0.5–99.5 percentile span, counted from the air end).
CHEST_WINDOWS_HU: tuple[tuple[str, float, float], ...] = (
    ("Lung", -600.0, 1500.0),
    ("Mediastinum", 50.0, 350.0),
    ("Bone", 400.0, 1800.0),
)
CHEST_WINDOWS_RELATIVE: tuple[tuple[str, float, float], ...] = (   # (name, centre, width) as fractions
    ("Lung", 0.35, 0.70),         # the dark half stretched: vessels and fissures in the lung fields
    ("Mediastinum", 0.65, 0.35),  # narrow on the bright soft tissue: behind the heart, the hila
    ("Bone", 0.70, 0.90),         # wide and bright: ribs and spine without burning out
)


def has_hounsfield_units(image: XrayImage) -> bool:
    """True when the values after the modality LUT are calibrated HU (a CT image)."""
    return str(image.metadata.get("Modality", "")).strip().upper() == "CT"


def chest_presets(image: XrayImage) -> list[tuple[WindowPreset, str]]:
    """Lung, mediastinum and bone windows for `image`, each with a tooltip saying what it is.

    HU data gets the HU windows; anything else relative windows on its own range (MONOCHROME1
    stores air as the high values, so the fractions count from the top there).
    """
    if has_hounsfield_units(image):
        return [
            (WindowPreset(f"{name} (HU)", Window(center, width)),
             f"{name} window in Hounsfield units: L {center:g}, W {width:g}")
            for name, center, width in CHEST_WINDOWS_HU
        ]
    span = percentile_window(image.pixels)
    low, width = span.center - span.width / 2.0, span.width
    air_is_high = bool(image.invert_for_display)
    presets = []
    for (name, center, fraction), (_, hu_center, hu_width) in zip(CHEST_WINDOWS_RELATIVE, CHEST_WINDOWS_HU):
        offset = center * width
        middle = low + width - offset if air_is_high else low + offset
        presets.append((
            WindowPreset(f"{name} (relative)", Window(float(middle), float(fraction * width))),
            f"{name} window for a radiograph: its values are not Hounsfield units, so instead of "
            f"L {hu_center:g} / W {hu_width:g} this window sits {center:.0%} up the image's own range "
            f"(from the air end) and spans {fraction:.0%} of it",
        ))
    return presets
