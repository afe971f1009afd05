"""Distance measurement maths for the ruler tool (pure Python, no Qt).

Points are in image pixel coordinates (x = column, y = row, continuous). Pixel spacing is
(row, column) in mm, as in DICOM Pixel Spacing / Imager Pixel Spacing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cxrviewer.core.types import SpacingKind


@dataclass(frozen=True)
class Measurement:
    """A measured distance with the unit it is honestly expressed in."""

    value: float
    unit: str            # "mm", "mm at detector" or "px"
    pixels: float        # the same distance in (unscaled) pixels

    @property
    def text(self) -> str:
        return f"{self.value:.1f} {self.unit}"


def measure_distance(
    start: tuple[float, float],
    end: tuple[float, float],
    pixel_spacing: tuple[float, float] | None,
    spacing_kind: SpacingKind,
) -> Measurement:
    """Distance between two image points.

    PATIENT spacing gives millimetres at the patient; DETECTOR spacing (Imager Pixel Spacing
    without Pixel Spacing) gives millimetres at the detector, which overstate anatomy by the
    geometric magnification, so the unit says so; without spacing the answer is in pixels.
    """
    dx = float(end[0]) - float(start[0])
    dy = float(end[1]) - float(start[1])
    pixels = math.hypot(dx, dy)
    kind = SpacingKind(spacing_kind)
    if pixel_spacing is None or kind is SpacingKind.NONE:
        return Measurement(pixels, "px", pixels)
    row_mm, col_mm = float(pixel_spacing[0]), float(pixel_spacing[1])
    if not (row_mm > 0 and col_mm > 0 and math.isfinite(row_mm) and math.isfinite(col_mm)):
        return Measurement(pixels, "px", pixels)
    millimetres = math.hypot(dx * col_mm, dy * row_mm)
    unit = "mm" if kind is SpacingKind.PATIENT else "mm at detector"
    return Measurement(millimetres, unit, pixels)
