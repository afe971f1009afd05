"""Measurement maths for the ruler and angle tools (pure Python, no Qt).

Points are in image pixel coordinates (x = column, y = row, continuous). Pixel spacing is
(row, column) in mm, as in DICOM Pixel Spacing / Imager Pixel Spacing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cxrviewer.core.types import SpacingKind

Point = tuple[float, float]     # (x, y) in image pixels
Spacing = tuple[float, float]   # (row, column) in mm


def _usable_spacing(pixel_spacing: Spacing | None) -> Spacing | None:
    """(row, column) mm when both are positive and finite, else None (measure in pixels)."""
    if pixel_spacing is None:
        return None
    row_mm, col_mm = float(pixel_spacing[0]), float(pixel_spacing[1])
    if row_mm > 0 and col_mm > 0 and math.isfinite(row_mm) and math.isfinite(col_mm):
        return row_mm, col_mm
    return None


@dataclass(frozen=True)
class Measurement:
    """A measured distance with the unit it is honestly expressed in."""

    value: float
    unit: str            # "mm", "mm at detector" or "px"
    pixels: float        # the same distance in (unscaled) pixels

    @property
    def text(self) -> str:
        return f"{self.value:.1f} {self.unit}"


def measure_distance(start: Point, end: Point, pixel_spacing: Spacing | None,
                     spacing_kind: SpacingKind) -> Measurement:
    """Distance between two image points.

    PATIENT spacing gives millimetres at the patient; DETECTOR spacing (Imager Pixel Spacing
    without Pixel Spacing) gives millimetres at the detector, which overstate anatomy by the
    geometric magnification, so the unit says so; without spacing the answer is in pixels.
    """
    dx = float(end[0]) - float(start[0])
    dy = float(end[1]) - float(start[1])
    pixels = math.hypot(dx, dy)
    kind = SpacingKind(spacing_kind)
    spacing = _usable_spacing(pixel_spacing)
    if spacing is None or kind is SpacingKind.NONE:
        return Measurement(pixels, "px", pixels)
    row_mm, col_mm = spacing
    millimetres = math.hypot(dx * col_mm, dy * row_mm)
    unit = "mm" if kind is SpacingKind.PATIENT else "mm at detector"
    return Measurement(millimetres, unit, pixels)


@dataclass(frozen=True)
class AngleMeasurement:
    """The angle at a vertex between two arms, in degrees (0–180)."""

    degrees: float

    @property
    def text(self) -> str:
        return f"{self.degrees:.1f}°"


def measure_angle(first: Point, vertex: Point, second: Point,
                  pixel_spacing: Spacing | None = None) -> AngleMeasurement:
    """The angle first–vertex–second, as it is in the patient.

    Points are image pixels; with a non-square pixel spacing the arms are scaled to millimetres
    first (0.1 mm columns × 0.2 mm rows make a 45° line in pixels steeper in the patient). Rotating
    or flipping the view does not change it. An arm of zero length gives 0°.
    """
    row_mm, col_mm = _usable_spacing(pixel_spacing) or (1.0, 1.0)
    ax, ay = (float(first[0]) - float(vertex[0])) * col_mm, (float(first[1]) - float(vertex[1])) * row_mm
    bx, by = (float(second[0]) - float(vertex[0])) * col_mm, (float(second[1]) - float(vertex[1])) * row_mm
    if math.hypot(ax, ay) == 0 or math.hypot(bx, by) == 0:
        return AngleMeasurement(0.0)
    return AngleMeasurement(abs(math.degrees(math.atan2(ax * by - ay * bx, ax * bx + ay * by))))
