"""`cxrviewer render --overlay --read-first`: the state before the trainee's call, no AI drawn.

The picture is the plain render (the same pixels, row for row) with a caption band under it;
no model is run, so it works even without one. Without `--read-first` the heat map is there.
(`cxrviewer screenshot --read-first` opens the window: tests/gui/test_trainee_integration.py.)
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer import cli
from cxrviewer.commands.render import READ_FIRST_CAPTION, add_caption_band
from tests.model_factory import build_tiny_classifier, make_model_folder


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("read_first_models")
    make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    return root


def read_image(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8
    return image


def chest_dicom(make_dicom) -> Path:
    rows, cols = 120, 100
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    body = 2600.0 - 600.0 * ((xx - cols / 2) / (cols / 2)) ** 2
    for cx in (0.3, 0.7):
        body[((xx - cx * cols) / (0.16 * cols)) ** 2 + ((yy - 0.45 * rows) / (0.3 * rows)) ** 2 < 1.0] -= 1500
    return make_dicom(body.astype(np.uint16), name="chest.dcm")


def render(args: list[str]) -> int:
    return cli.main(["render", *args])


def colour_fraction(image: np.ndarray) -> float:
    if image.ndim == 2:
        return 0.0
    channels = image.astype(np.int16)
    return float(((channels.max(axis=2) - channels.min(axis=2)) > 60).mean())


@pytest.mark.parametrize("size", [None, 300])
def test_read_first_is_the_plain_render_plus_a_caption(make_dicom, tmp_path, capsys, size) -> None:
    """No model here (the test isolation points CXRVIEWER_MODELS_DIR at an empty folder): none is needed."""
    source = chest_dicom(make_dicom)
    plain, hidden = tmp_path / "plain.png", tmp_path / "hidden.png"
    extra = [] if size is None else ["--size", str(size)]
    assert render([str(source), "-o", str(plain), *extra]) == 0
    capsys.readouterr()
    assert render([str(source), "-o", str(hidden), "--overlay", "--read-first", *extra]) == 0
    out = capsys.readouterr()
    assert out.err == "" and "Read first" in out.out and "heat map" not in out.out
    plain_pixels, hidden_pixels = read_image(plain), read_image(hidden)
    assert hidden_pixels.ndim == 2                                     # gray: no colour anywhere
    rows, cols = plain_pixels.shape
    assert hidden_pixels.shape[1] == cols and hidden_pixels.shape[0] > rows
    np.testing.assert_array_equal(hidden_pixels[:rows], plain_pixels)  # the film, untouched
    band = hidden_pixels[rows:]
    assert (band == band.min()).mean() > 0.7 and band.max() > 150       # dark band with light text
    np.testing.assert_array_equal(hidden_pixels, add_caption_band(plain_pixels, READ_FIRST_CAPTION))


def test_read_first_needs_overlay(make_dicom, tmp_path, capsys) -> None:
    source = chest_dicom(make_dicom)
    assert render([str(source), "-o", str(tmp_path / "x.png"), "--read-first"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cxrviewer: error: --read-first needs --overlay"]
    assert not (tmp_path / "x.png").exists()


def test_without_read_first_the_overlay_is_drawn(make_dicom, tmp_path, capsys, monkeypatch, models_root) -> None:
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    source = chest_dicom(make_dicom)
    shown, hidden = tmp_path / "shown.png", tmp_path / "hidden.png"
    assert render([str(source), "-o", str(shown), "--overlay", "--model", "tiny"]) == 0
    assert "heat map for" in capsys.readouterr().out
    assert render([str(source), "-o", str(hidden), "--overlay", "--read-first", "--model", "tiny"]) == 0
    shown_pixels, hidden_pixels = read_image(shown), read_image(hidden)
    assert shown_pixels.ndim == 3 and colour_fraction(shown_pixels) > 0.1   # default threshold 40 %: part of the image
    assert colour_fraction(hidden_pixels) == 0.0


def test_caption_band_shrinks_the_text_for_a_narrow_image() -> None:
    narrow = np.full((40, 60), 128, np.uint8)
    out = add_caption_band(narrow)
    assert out.shape[1] == 60 and out.shape[0] > 40
    np.testing.assert_array_equal(out[:40], narrow)
    band = out[40:]
    assert band.max() > 100 and (band[:, -3:] < 100).all()             # the text stays inside the band
