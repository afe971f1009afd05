"""core/pyramid.py: the display pyramid built off the GUI thread, and its registry."""
from __future__ import annotations

import gc
from pathlib import Path

import cv2
import numpy as np

from cxrviewer.core import pyramid
from cxrviewer.core.imaging import full_range_window
from cxrviewer.core.types import Window, XrayImage, readonly


def xray(pixels: np.ndarray) -> XrayImage:
    return XrayImage(Path("x.png"), "x.png", readonly(pixels.astype(np.float32)), Window(0.5, 1.0), (), "MONOCHROME2")


def test_levels_halve_down_to_two_pixels_and_match_a_direct_area_average() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.normal(1000, 200, (512, 384)).astype(np.float32)
    built = pyramid.build_pyramid(pixels)
    assert sorted(built.levels) == [2, 4, 8, 16, 32, 64]   # 64 = MAX_LEVEL, as the canvas caps it
    for level, array in built.levels.items():
        assert array.shape == (512 // level, 384 // level) and not array.flags.writeable
        direct = cv2.resize(pixels, (384 // level, 512 // level), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(array, direct, rtol=0, atol=1e-2)   # averages of averages: same means
    assert built.full_window == full_range_window(pixels)
    assert built.nbytes == sum(a.nbytes for a in built.levels.values())


def test_levels_stop_at_max_level_and_odd_sizes_round_like_the_canvas() -> None:
    built = pyramid.build_pyramid(np.zeros((101, 67), np.float32), max_level=8)
    assert sorted(built.levels) == [2, 4, 8]
    for level, array in built.levels.items():
        width, height = pyramid.level_size((101, 67), level)
        assert array.shape == (height, width)


def test_the_registry_returns_the_pyramid_of_that_image_object_only() -> None:
    image = xray(np.zeros((64, 64)))
    twin = xray(np.zeros((64, 64)))
    built = pyramid.build_pyramid(image.pixels)
    pyramid.attach(image, built)
    assert pyramid.pyramid_of(image) is built and pyramid.pyramid_of(twin) is None


def test_a_collected_image_leaves_the_registry() -> None:
    image = xray(np.zeros((64, 64)))
    pyramid.attach(image, pyramid.build_pyramid(image.pixels))
    key = id(image)
    del image
    gc.collect()
    assert key not in pyramid._REGISTRY


def test_prepare_display_skips_small_images() -> None:
    assert pyramid.prepare_display(xray(np.zeros((100, 100)))) is None
    large = xray(np.zeros((2100, 2000)))
    built = pyramid.prepare_display(large)
    assert built is not None and pyramid.pyramid_of(large) is built
