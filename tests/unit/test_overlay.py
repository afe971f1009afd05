"""Overlay pipeline: normalisation modes, upsampling, LUTs vs matplotlib, threshold, contours, blend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.xai import overlay as ov


def _peak(size: int = 7, height: float = 1.0) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    return (height * np.exp(-((yy - centre) ** 2 + (xx - centre) ** 2) / 4.0)).astype(np.float32)


# -- normalisation ------------------------------------------------------------------------------

def test_per_image_is_min_max():
    cam = _peak() * 3.0 + 0.5
    out = ov.normalise_cam(cam, "per_image")
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == pytest.approx(1.0)
    assert not ov.normalise_cam(np.full((7, 7), 2.0), "per_image").any()  # flat map → nothing


def test_absolute_keeps_a_weak_cam_weak():
    strong, weak = _peak(height=4.0), _peak(height=0.2)
    assert ov.normalise_cam(weak, "per_image").max() == pytest.approx(1.0)  # per-image: looks as hot
    strong_abs = ov.normalise_cam(strong, "absolute", absolute_max=4.0)
    weak_abs = ov.normalise_cam(weak, "absolute", absolute_max=4.0)
    assert strong_abs.max() == pytest.approx(1.0)
    assert weak_abs.max() == pytest.approx(0.05)
    np.testing.assert_allclose(weak_abs, weak / 4.0, rtol=1e-6)
    assert ov.normalise_cam(strong, "absolute", absolute_max=1.0).max() == 1.0  # clipped


def test_normalisation_arguments_are_checked():
    with pytest.raises(ValueError, match="positive absolute_max"):
        ov.normalise_cam(_peak(), "absolute")
    with pytest.raises(ValueError, match="unknown normalisation"):
        ov.normalise_cam(_peak(), "global")


def test_non_finite_values_do_not_leak():
    cam = _peak()
    cam[0, 0] = np.nan
    assert np.isfinite(ov.normalise_cam(cam)).all()


# -- upsampling -----------------------------------------------------------------------------

@pytest.mark.parametrize("interpolation", ["cubic", "linear", "nearest"])
def test_upsample_to_image_shape_without_overshoot(interpolation):
    cam = ov.normalise_cam(_peak())
    up = ov.upsample_cam(cam, (300, 200), interpolation)
    assert up.shape == (300, 200) and up.dtype == np.float32
    assert up.min() >= 0.0 and up.max() <= 1.0


def test_index_image_is_uint8_of_the_image_size():
    index = ov.cam_index_image(_peak(), (120, 90))
    assert index.shape == (120, 90) and index.dtype == np.uint8
    assert index.max() == 255 and index.min() == 0
    assert ov.cam_to_index(np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 128, 255, 255]


# -- colour tables -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ov.COLORMAPS)
def test_lut_matches_matplotlib(name):
    import matplotlib

    lut = ov.colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    reference = matplotlib.colormaps[name](np.arange(256) / 255.0)[:, :3] * 255.0
    assert np.abs(lut.astype(float) - reference).max() <= 1.0
    assert ov.colormap_lut(name) is lut and not lut.flags.writeable  # cached, shared read-only


def test_bundled_tables_are_matplotlibs_and_the_viewer_does_not_import_it():
    """resources/colormaps/colormaps.npz equals matplotlib exactly (regenerate it with
    tools/make_colormap_tables.py); drawing an overlay colour table imports no matplotlib."""
    import subprocess
    import sys

    from cxrviewer.core.resources import resource_path

    path = resource_path(*ov.COLORMAP_TABLES.split("/"))
    with np.load(path, allow_pickle=False) as tables:
        assert sorted(tables.files) == sorted(ov.COLORMAPS)
        for name in ov.COLORMAPS:
            assert np.array_equal(tables[name], ov.matplotlib_lut(name)), name
    code = ("import sys\nfrom cxrviewer.core.xai import overlay as ov\n"
            "[ov.colormap_lut(name) for name in ov.COLORMAPS]\n"
            "print('matplotlib' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=str(Path(__file__).resolve().parents[2]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_unknown_colormap():
    with pytest.raises(ValueError, match="unknown colormap"):
        ov.colormap_lut("rainbow-unicorn")


# -- colorize --------------------------------------------------------------------------------

def test_colorize_threshold_makes_low_values_transparent():
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lut = ov.colormap_lut("jet")
    rgba = ov.colorize(index, lut, threshold=0.5)
    assert rgba.shape == (16, 16, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3].ravel()
    visible = np.arange(256) / 255.0 >= 0.5
    assert (alpha[~visible] == 0).all() and (alpha[visible] == 255).all()
    np.testing.assert_array_equal(rgba[..., :3].reshape(256, 3), lut)  # colour = LUT[index]


def test_colorize_zero_threshold_shows_everything_and_one_shows_only_the_peak():
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    lut = ov.colormap_lut("inferno")
    assert (ov.colorize(index, lut, 0.0)[..., 3] == 255).all()
    assert (ov.colorize(index, lut, 1.0)[..., 3] > 0).sum() == 1


def test_colorize_reuses_an_output_buffer():
    index = ov.cam_index_image(_peak(), (50, 40))
    out = np.empty((50, 40, 4), np.uint8)
    result = ov.colorize(index, ov.colormap_lut("viridis"), 0.2, out=out)
    assert result is out
    np.testing.assert_array_equal(out, ov.colorize(index, ov.colormap_lut("viridis"), 0.2))
    with pytest.raises(ValueError, match="uint8 index image"):
        ov.colorize(index.astype(np.float32), ov.colormap_lut("viridis"))
    with pytest.raises(ValueError, match="C-contiguous"):
        ov.colorize(index, ov.colormap_lut("viridis"), out=np.empty((40, 50, 4), np.uint8))


# -- contours and blend ------------------------------------------------------------------------

def test_contours_are_rings_not_fills():
    index = ov.cam_index_image(_peak(7), (400, 400))
    rgba = ov.contour_rgba(index, [0.5], ov.colormap_lut("hot"), thickness=2)
    assert rgba.shape == (400, 400, 4)
    drawn = rgba[..., 3] > 0
    assert drawn.any()
    assert not drawn[200, 200]  # the hot centre is inside the line, not painted
    inside = index >= 128
    assert drawn.sum() < inside.sum() / 5
    assert not ov.contour_rgba(index, [0.0], ov.colormap_lut("hot")).any()


def test_blend_opacity_and_alpha():
    gray = np.full((4, 4), 100, np.uint8)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    half = ov.blend(gray, rgba, 0.5)
    assert half.shape == (4, 4, 3) and half.dtype == np.uint8
    np.testing.assert_allclose(half[0, 0], [178, 50, 50], atol=1)
    np.testing.assert_array_equal(half[3, 3], [100, 100, 100])
    np.testing.assert_array_equal(ov.blend(gray, rgba, 0.0)[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(ov.blend(gray, rgba, 1.0)[0, 0], [255, 0, 0])
    with pytest.raises(ValueError, match="differ in size"):
        ov.blend(gray, rgba[:2], 0.5)
