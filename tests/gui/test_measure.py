"""Ruler maths, without Qt."""
from __future__ import annotations

import math

import pytest

from cxrviewer.core.types import SpacingKind
from cxrviewer.ui.viewer.measure import measure_distance


def test_patient_spacing_gives_mm() -> None:
    m = measure_distance((10, 20), (110, 20), (0.5, 0.5), SpacingKind.PATIENT)
    assert m.unit == "mm"
    assert m.value == pytest.approx(50.0)
    assert m.pixels == pytest.approx(100.0)
    assert m.text == "50.0 mm"


def test_detector_spacing_says_at_detector() -> None:
    m = measure_distance((0, 0), (0, 100), (0.5, 0.5), SpacingKind.DETECTOR)
    assert m.text == "50.0 mm at detector"


def test_no_spacing_gives_pixels() -> None:
    m = measure_distance((0, 0), (30, 40), None, SpacingKind.NONE)
    assert (m.value, m.unit, m.text) == (50.0, "px", "50.0 px")


def test_anisotropic_spacing_uses_row_for_y_and_column_for_x() -> None:
    # (row, column) spacing: x steps use the column spacing, y steps the row spacing.
    m = measure_distance((0, 0), (30, 40), (0.2, 0.1), SpacingKind.PATIENT)
    assert m.value == pytest.approx(math.hypot(30 * 0.1, 40 * 0.2))


@pytest.mark.parametrize("spacing", [(0.0, 0.5), (-1.0, 1.0), (float("nan"), 1.0)])
def test_invalid_spacing_falls_back_to_pixels(spacing: tuple[float, float]) -> None:
    assert measure_distance((0, 0), (3, 4), spacing, SpacingKind.PATIENT).unit == "px"


def test_spacing_ignored_when_kind_is_none() -> None:
    assert measure_distance((0, 0), (3, 4), (0.5, 0.5), SpacingKind.NONE).text == "5.0 px"
