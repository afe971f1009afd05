"""Window/level and display transforms (pure numpy)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cxrviewer.core.imaging import apply_window, default_display, full_range_window, percentile_window
from cxrviewer.core.types import Window, XrayImage


def test_apply_window_is_linear_and_clips():
    values = np.array([-100.0, 0.0, 127.5, 255.0, 1000.0])
    np.testing.assert_array_equal(apply_window(values, Window(127.5, 255.0)), [0, 0, 128, 255, 255])


def test_apply_window_maps_low_to_black_and_high_to_white():
    shown = apply_window(np.array([1000.0, 2000.0, 3000.0]), Window(2000.0, 2000.0))
    np.testing.assert_array_equal(shown, [0, 128, 255])
    assert shown.dtype == np.uint8


def test_invert_flips_output():
    values = np.linspace(0, 255, 11)
    window = Window(127.5, 255.0)
    np.testing.assert_array_equal(apply_window(values, window, invert=True), 255 - apply_window(values, window))


def test_zero_width_window_does_not_divide_by_zero():
    shown = apply_window(np.array([0.0, 1.0, 2.0]), Window(1.0, 0.0))
    assert shown.dtype == np.uint8 and shown[0] == 0 and shown[2] == 255


def test_default_display_uses_default_window_and_polarity(tmp_path):
    pixels = np.array([[0.0, 50.0, 100.0]], np.float32)
    image = XrayImage(
        path=tmp_path / "x.png", display_name="x.png", pixels=pixels,
        default_window=Window(50.0, 100.0), presets=(), photometric="MONOCHROME1", invert_for_display=True,
    )
    np.testing.assert_array_equal(default_display(image), [[255, 255 - 128, 0]])


def test_full_range_window_covers_finite_values():
    window = full_range_window(np.array([np.nan, -5.0, 15.0, np.inf]))
    assert (window.low, window.high) == (-5.0, 15.0)


def test_full_range_window_of_constant_or_empty_is_at_least_one_wide():
    assert full_range_window(np.full((3, 3), 7.0)).width == 1.0
    assert full_range_window(np.array([np.nan])) == Window(0.5, 1.0)


def test_percentile_window_ignores_outliers():
    values = np.concatenate([np.linspace(100, 200, 10_000), [1e9, -1e9]])
    window = percentile_window(values)
    assert 95 < window.low < 105 and 195 < window.high < 205


def test_percentile_window_of_flat_image_falls_back_to_full_range():
    assert percentile_window(np.full((4, 4), 3.0)) == full_range_window(np.full((4, 4), 3.0))
    assert percentile_window(np.array([np.nan, np.inf])) == Window(0.5, 1.0)


@settings(max_examples=50, deadline=None)
@given(
    values=hnp.arrays(np.float32, st.integers(1, 50), elements=st.floats(-1e6, 1e6, width=32)),
    center=st.floats(-1e5, 1e5),
    width=st.floats(1e-3, 1e6),
)
def test_apply_window_is_monotonic_and_bounded(values, center, width):
    shown = apply_window(values, Window(center, width))
    order = np.argsort(values, kind="stable")
    assert shown.dtype == np.uint8
    assert np.all(np.diff(shown[order].astype(int)) >= 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_windows_are_finite_for_every_dtype(dtype):
    values = np.arange(100).astype(dtype)
    for window in (full_range_window(values), percentile_window(values)):
        assert np.isfinite(window.center) and window.width > 0


def test_percentile_window_of_a_large_image_matches_the_exact_percentiles():
    """The ~1 M-pixel sample moves the window by far less than one of 256 display levels."""
    rng = np.random.default_rng(3)
    pixels = rng.gamma(2.0, 600.0, (2400, 2000)).astype(np.float32)
    pixels[rng.random(pixels.shape) < 0.01] = np.nan
    pixels[0, :5] = np.inf
    exact_low, exact_high = np.nanpercentile(np.where(np.isinf(pixels), np.nan, pixels), [0.5, 99.5])
    window = percentile_window(pixels.T)          # a non-contiguous view works too
    assert abs(window.low - exact_low) < window.width / 256
    assert abs(window.high - exact_high) < window.width / 256


def test_thumbnail_is_the_default_display_shrunk_with_its_polarity():
    import dataclasses

    import cv2

    from cxrviewer.core.imaging import thumbnail
    from tests.model_factory import make_xray

    image = make_xray(400, seed=4)
    small = thumbnail(image, 64)
    assert small.dtype == np.uint8 and small.shape == (64, 64)
    reference = cv2.resize(default_display(image), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - reference.astype(int)).mean() < 3
    inverted = thumbnail(dataclasses.replace(image, invert_for_display=True), 64)   # MONOCHROME1
    assert np.abs((255 - inverted.astype(int)) - small.astype(int)).max() <= 1
    tall = dataclasses.replace(image, pixels=np.zeros((300, 100), np.float32))
    assert thumbnail(tall, 64).shape == (64, 21)


def test_chest_presets_use_hounsfield_units_only_for_ct() -> None:
    """#13: lung W1500/L−600 etc. for CT; a radiograph gets windows on its own range (no HU)."""
    from dataclasses import replace

    from cxrviewer.core.imaging import chest_presets, percentile_window
    from cxrviewer.core.types import Window, XrayImage

    pixels = np.linspace(0, 4000, 100 * 100, dtype=np.float32).reshape(100, 100)
    radiograph = XrayImage(Path("x.dcm"), "x", pixels, Window(2000, 4000), (), "MONOCHROME2",
                           metadata={"Modality": "DX"})
    ct = replace(radiograph, metadata={"Modality": "CT"})
    hu = {p.name: p.window for p, _tip in chest_presets(ct)}
    assert hu == {"Lung (HU)": Window(-600, 1500), "Mediastinum (HU)": Window(50, 350), "Bone (HU)": Window(400, 1800)}
    relative = {p.name: (p.window, tip) for p, tip in chest_presets(radiograph)}
    span = percentile_window(pixels)
    lung, tip = relative["Lung (relative)"]
    assert lung.center == pytest.approx(span.center - span.width / 2 + 0.35 * span.width)
    assert "not Hounsfield units" in tip
    # MONOCHROME1 keeps air at the high values: the lung window moves to the top of the range
    inverted = replace(radiograph, invert_for_display=True, photometric="MONOCHROME1")
    flipped = {p.name: p.window for p, _ in chest_presets(inverted)}["Lung (relative)"]
    assert flipped.center == pytest.approx(span.center + span.width / 2 - 0.35 * span.width)


def test_a_window_spanning_two_bounds_is_their_middle_and_distance() -> None:
    from cxrviewer.core.types import Window

    assert Window.spanning(-5.0, 15.0) == Window(5.0, 20.0)
    assert (Window.spanning(-5.0, 15.0).low, Window.spanning(-5.0, 15.0).high) == (-5.0, 15.0)
    assert Window.spanning(3.0, 3.0, min_width=1.0) == Window(3.5, 1.0)   # widened upwards
