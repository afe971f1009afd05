"""Shared pytest fixtures. Each owner keeps fixtures in their own delimited section."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# =========================================================================== isolation
# Every test runs with no bundled model (a MainWindow must not load the real DenseNet unless a
# test asks for it), and with logs and the trainee's reads database in a temporary folder.
# Tests that need a model set CXRVIEWER_MODELS_DIR themselves (monkeypatch wins: it runs later);
# tests that need the real bundled model use the `bundled_models` fixture.


@pytest.fixture(autouse=True)
def _isolated_user_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    base = tmp_path_factory.mktemp("user-state")
    (base / "no-models").mkdir()
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(base / "no-models"))
    monkeypatch.setenv("CXRVIEWER_LOG_DIR", str(base / "logs"))
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(base / "data"))
    root_logger = logging.getLogger()
    handlers_before, level_before = list(root_logger.handlers), root_logger.level
    yield base
    from cxrviewer.core.logs import shutdown_logging

    shutdown_logging()   # a test that set up logging must not leave its file handler open
    for handler in [h for h in root_logger.handlers if h not in handlers_before]:
        root_logger.removeHandler(handler)   # e.g. cxr-train's basicConfig(force=True)
        handler.close()
    for handler in handlers_before:
        if handler not in root_logger.handlers:
            root_logger.addHandler(handler)  # pytest's capture handlers, removed by force=True
    root_logger.setLevel(level_before)


@pytest.fixture(autouse=True)
def _application_look_restored():
    """A test that creates the application the viewer's way (create_application, the screenshot
    command, app.run) applies the reading-room theme to the whole session's QApplication: put Qt's
    own look back afterwards, so golden screenshots never depend on the order tests ran in."""
    import sys

    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets is not None else None
    saved = None
    if app is not None:
        from PySide6.QtGui import QPalette

        saved = (QPalette(app.palette()), app.styleSheet(), app.property("cxrviewerTheme"))
    yield
    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets is not None else None
    if app is None:
        return
    if saved is not None:
        palette, sheet, theme = saved
    else:
        palette, sheet, theme = app.style().standardPalette(), "", None
    if app.styleSheet() != sheet or app.property("cxrviewerTheme") != theme:
        app.setPalette(palette)
        app.setStyleSheet(sheet)
        app.setProperty("cxrviewerTheme", theme)


@pytest.fixture
def log_dir(_isolated_user_state: Path) -> Path:
    """This test's log folder ($CXRVIEWER_LOG_DIR)."""
    return _isolated_user_state / "logs"


@pytest.fixture
def bundled_models(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's resources/models, for tests of the real bundled model."""
    root = Path(__file__).resolve().parents[1] / "resources" / "models"
    if not (root / "pneumonia3" / "model.json").exists():
        pytest.skip("the bundled pneumonia3 model is not in resources/models")
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(root))
    return root


# =========================================================================== image loading
# Synthetic DICOM files (owner: image loading / render). `make_dicom(...)` writes a small,
# valid DICOM built with pydicom and returns its path.

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def build_dicom_dataset(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    **attributes: Any,
) -> Any:
    """A DX-like dataset holding `pixels` (2-D, frames×rows×cols, or rows×cols×3 for RGB)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = np.ascontiguousarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TEST001"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1.1"
    ds.StudyDate = "20240131"
    ds.Modality = "DX"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    bits = bits_stored or (8 if arr.dtype.itemsize == 1 else 16)
    ds.set_pixel_data(arr, photometric, bits)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture(name="build_dicom_dataset")
def build_dicom_dataset_fixture() -> Callable[..., Any]:
    """The dataset builder itself, for tests that write files their own way."""
    return build_dicom_dataset


@pytest.fixture
def make_dicom(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_dicom(pixels, name=..., photometric=..., compress=UID, customize=fn, **tags)."""

    def make(
        pixels: np.ndarray,
        name: str = "image.dcm",
        photometric: str = "MONOCHROME2",
        bits_stored: int | None = None,
        compress: str | None = None,
        customize: Callable[[Any], None] | None = None,
        **attributes: Any,
    ) -> Path:
        ds = build_dicom_dataset(pixels, photometric, bits_stored, **attributes)
        if compress is not None:
            ds.compress(compress)
        if customize is not None:
            customize(ds)
        path = tmp_path / name
        ds.save_as(path, enforce_file_format=True)
        return path

    return make


# ======================================================================= end image loading
