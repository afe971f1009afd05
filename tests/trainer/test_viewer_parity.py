"""The trainer's model input equals the viewer's for the same file (PNG, JPEG, DICOM).

Trainer: `trainer.dataset.decode_samples` (uint8 cache) then `to_model_array`. Viewer: what
the inference worker sends to the model, `core.model.engine.prepare_input(load_image(f)).x`.
Any drift (another resize, window, polarity or dtype) would train the model on pictures it
never sees in the viewer.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer.core.io import load_image
from cxrviewer.core.model.engine import prepare_input
from cxrviewer.core.model.preprocessing import to_model_array
from tests.shared_data import shared_dir, shared_images
from trainer.data import Sample
from trainer.dataset import decode_samples

SIZES = (224, 320)   # 320 > the synthetic images' short side: the upscaling path too


def _ramp(rows: int, cols: int, high: int, dtype: type) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:cols]
    values = (x * 3 + y * 5 + (x * y) % 17) % (high + 1)
    return values.astype(dtype)


def assert_same_input(path: Path, input_size: int) -> None:
    trainer = to_model_array(decode_samples([Sample(path, "NORMAL", "P1")], input_size, None))
    viewer = prepare_input(load_image(path), input_size).x
    assert trainer.shape == (1, input_size, input_size, 1)
    assert trainer.dtype == viewer.dtype == np.float32
    assert np.array_equal(trainer[0], viewer), (
        f"{path.name}: trainer and viewer inputs differ in {int(np.sum(trainer[0] != viewer))} pixels "
        f"(max {float(np.abs(trainer[0] - viewer).max())} gray levels)")


def synthetic_files(folder: Path, make_dicom) -> list[Path]:
    png16 = folder / "ramp16.png"
    assert cv2.imwrite(str(png16), _ramp(260, 300, 4095, np.uint16))
    jpeg = folder / "ramp8.jpeg"
    assert cv2.imwrite(str(jpeg), _ramp(300, 250, 255, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    mono1 = make_dicom(_ramp(280, 240, 4095, np.uint16), name="mono1.dcm", photometric="MONOCHROME1",
                       bits_stored=12, WindowCenter=1800, WindowWidth=2600)
    mono2 = make_dicom(_ramp(240, 280, 1023, np.uint16), name="mono2.dcm", bits_stored=10,
                       RescaleSlope=2, RescaleIntercept=-100)
    return [png16, jpeg, mono1, mono2]


@pytest.mark.parametrize("input_size", SIZES)
def test_synthetic_png_jpeg_dicom(tmp_path, make_dicom, input_size):
    files = synthetic_files(tmp_path, make_dicom)
    for path in files:
        assert_same_input(path, input_size)


def test_the_check_sees_a_difference(tmp_path, make_dicom):
    """The comparison is strict: one gray level in one pixel of the trainer's input fails it."""
    path = synthetic_files(tmp_path, make_dicom)[0]
    trainer = to_model_array(decode_samples([Sample(path, "NORMAL", "P1")], 224, None))
    trainer[0, 10, 10, 0] += 1
    assert not np.array_equal(trainer[0], prepare_input(load_image(path), 224).x)


def _shared_files() -> list[Path]:
    folder = shared_dir()
    if folder is None:
        return []
    return sorted((folder / "dicom").glob("*.dcm")) + shared_images(2)


@pytest.mark.shared
@pytest.mark.skipif(not _shared_files(), reason="../shared not present: real-data parity skipped")
@pytest.mark.parametrize("path", _shared_files(), ids=lambda p: p.name)
def test_real_files(path):
    from cxrviewer.core.errors import ImageLoadError

    try:
        load_image(path)
    except ImageLoadError as exc:   # the viewer refuses it: the trainer must refuse it the same way
        with pytest.raises(ImageLoadError) as raised:
            decode_samples([Sample(path, "NORMAL", "P1")], 224, None)
        assert raised.value.reason == exc.reason
        return
    assert_same_input(path, 224)
