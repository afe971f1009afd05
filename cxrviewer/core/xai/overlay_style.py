"""How the viewer draws a heat map, shared by the canvas overlay and `cxrviewer render --overlay`.

`core.xai.overlay` has the mechanics (normalise, upsample, LUT, contours, blend); this module
holds the choices on top of them — defaults, the overlay's resolution, which contour lines
are drawn and how thick — so that an exported picture looks like the viewer. No Qt here,
and cheap to import (the command line reads the defaults while building its parser).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

OVERLAY_MAX_SIDE = 1024
HEATMAP = "heatmap"
CONTOURS = "contours"
STYLES: tuple[str, ...] = (HEATMAP, CONTOURS)
CONTOUR_LEVELS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)

# Defaults that leave the anatomy readable under the map (#13): a perceptually uniform map
# (inferno: brightness rises with the value, no false bands as in jet; jet stays selectable),
# a lighter touch, and the weakest 40 % of the map left transparent.
DEFAULT_OPACITY = 0.35
DEFAULT_COLORMAP = "inferno"
DEFAULT_THRESHOLD = 0.4
# A fixed contour level this close to the threshold line is dropped: the two lines would run a
# pixel or two apart and read as one doubled line (threshold 0.59 beside the 0.6 level).
MIN_CONTOUR_GAP = 0.05


def overlay_shape(image_shape: tuple[int, int], max_side: int = OVERLAY_MAX_SIDE) -> tuple[int, int]:
    """(rows, columns) of the viewer's overlay: the image's own size, capped at `max_side`.

    A CAM has 6×6–8×8 cells, so a 3000×3000 radiograph gains nothing from a full-size
    overlay; recolouring ~1 MP instead of 9 MP keeps the sliders fluid.
    """
    rows, columns = int(image_shape[0]), int(image_shape[1])
    longest = max(rows, columns, 1)
    if longest <= max_side:
        return max(rows, 1), max(columns, 1)
    scale = max_side / longest
    return max(1, round(rows * scale)), max(1, round(columns * scale))


def contour_levels(threshold: float) -> tuple[float, ...]:
    """Iso-lines to draw: the threshold itself, then the fixed levels above it.

    A fixed level closer than MIN_CONTOUR_GAP above the threshold is left out (one line, not
    two nearly on top of each other); the threshold, where the map starts, always stays.
    """
    threshold = min(max(float(threshold), 0.0), 1.0)
    from cxrviewer.core.xai.overlay import threshold_index

    first = threshold_index(threshold)
    levels = [threshold] if threshold > 0 else []
    for level in CONTOUR_LEVELS:
        if threshold > 0 and (level < threshold + MIN_CONTOUR_GAP - 1e-9 or threshold_index(level) == first):
            continue
        if threshold <= 0 and level <= 0:
            continue
        levels.append(level)
    return tuple(levels)


def contour_thickness(shape: tuple[int, int]) -> int:
    """Line width in overlay pixels: about 2–3 screen pixels when the image fits a window."""
    return max(2, round(max(shape) / 400))


def overlay_rgba(
    index: np.ndarray,
    colormap: str = DEFAULT_COLORMAP,
    threshold: float = DEFAULT_THRESHOLD,
    style: str = HEATMAP,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """RGBA uint8 for a uint8 CAM index image, as the viewer draws it (heat map or contours)."""
    from cxrviewer.core.xai.overlay import colorize, colormap_lut, contour_rgba

    lut = colormap_lut(colormap)
    if style == CONTOURS:
        return contour_rgba(index, contour_levels(threshold), lut, contour_thickness(index.shape))
    if style != HEATMAP:
        raise ValueError(f"unknown overlay style {style!r}; choose one of {', '.join(STYLES)}")
    return colorize(index, lut, threshold, out=out)
