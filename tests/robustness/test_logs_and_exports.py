"""The log file (per-user folder, rotation, tracebacks, shown in About) and anonymised exports.

Exports are checked without OCR: two DICOM files identical except for every patient
identifier must export to identical pictures when anonymise is on — and to different ones
when it is off, which proves the comparison can see identifiers in the pixels at all.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer import cli
from cxrviewer.core import logs
from tests.conftest import build_dicom_dataset
from tests.gui.helpers import open_and_wait

from .hostile import chest_pixels, save

IDENTITIES = (
    {"PatientName": "Doe^Jane", "PatientID": "PID-1111", "PatientBirthDate": "19700102",
     "AccessionNumber": "ACC-1111", "InstitutionName": "North Teaching Hospital",
     "ReferringPhysicianName": "House^Gregory", "OtherPatientIDs": "OTHER-1111"},
    {"PatientName": "Roe^Richard", "PatientID": "ID-2222-X", "PatientBirthDate": "19551231",
     "AccessionNumber": "ZZ-98765", "InstitutionName": "South Infirmary",
     "ReferringPhysicianName": "Watson^John", "OtherPatientIDs": "OTHER-2222"},
)


def identified_dicom(path: Path, identity: dict[str, str]) -> Path:
    """The same image, UIDs and dates; only the patient identifiers differ between identities."""
    ds = build_dicom_dataset(chest_pixels(200, 160).astype(np.uint16) * 16, bits_stored=12,
                             PatientSex="F", PatientAge="054Y", StudyDescription="Chest PA",
                             ViewPosition="PA", Modality="CR", WindowCenter=2000, WindowWidth=4000)
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.42.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in identity.items():
        setattr(ds, keyword, value)
    return save(ds, path)


def identifier_strings(identity: dict[str, str]) -> list[bytes]:
    texts = []
    for value in identity.values():
        texts += [value, value.replace("^", ", "), value.replace("^", " ")]
        if value.isdigit() and len(value) == 8:
            texts.append(f"{value[:4]}-{value[4:6]}-{value[6:]}")
        texts += [part for part in value.split("^") if len(part) > 3]
    return sorted({t.encode() for t in texts})


# ================================================================================ logging
def test_log_folder_is_the_per_user_platformdirs_folder(monkeypatch) -> None:
    import platformdirs

    monkeypatch.delenv(logs.LOG_DIR_ENV, raising=False)
    folder = logs.log_dir()
    assert folder == Path(platformdirs.user_log_dir("cxrviewer", appauthor=False))
    assert "cxrviewer" in folder.parts
    if sys.platform.startswith("linux"):
        assert Path.home() in folder.parents or "XDG_STATE_HOME" in __import__("os").environ


def test_log_file_rotates_and_keeps_tracebacks(log_dir: Path) -> None:
    path = logs.setup_logging()
    assert path == log_dir / logs.LOG_FILE_NAME
    logger = logging.getLogger("cxrviewer.robustness")
    try:
        raise ValueError("simulated failure for the log")
    except ValueError:
        logger.exception("something went wrong")
    line = "x" * 1000
    for number in range(6000):                     # ~6 MB: more than all backups together
        logger.warning("%d %s", number, line)
    files = sorted(p.name for p in log_dir.iterdir())
    assert files == ["cxrviewer.log", "cxrviewer.log.1", "cxrviewer.log.2", "cxrviewer.log.3"]
    assert all((log_dir / name).stat().st_size <= logs.MAX_BYTES for name in files)
    assert "5999 " in path.read_text(encoding="utf-8")

    logs.shutdown_logging()
    for name in files:
        (log_dir / name).unlink()
    path = logs.setup_logging()
    try:
        raise ValueError("simulated failure for the log")
    except ValueError:
        logger.exception("something went wrong")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "ValueError: simulated failure for the log" in text


def test_unhandled_gui_errors_go_to_the_log_with_traceback(log_dir: Path, capsys) -> None:
    from cxrviewer.ui.shell import app as app_module

    path = logs.setup_logging()
    try:
        raise RuntimeError("simulated error in a slot")
    except RuntimeError as exc:
        app_module._log_unhandled(type(exc), exc, exc.__traceback__)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "unhandled error" in text and "Traceback" in text and "simulated error in a slot" in text


def test_about_dialog_shows_the_log_file_in_use(qtbot, make_window, log_dir: Path) -> None:
    from cxrviewer.ui.dialogs.about import AboutDialog

    path = logs.setup_logging()
    window = make_window(log_path=None)          # as when the window is built without run()
    window.action("about").trigger()
    dialog = window.findChild(AboutDialog)
    assert dialog is not None and dialog.isVisible()
    assert str(path) in dialog.text.text()
    dialog.close()


# ================================================================================ exports
def test_cli_render_does_not_depend_on_identifiers(tmp_path: Path) -> None:
    outputs = []
    for number, identity in enumerate(IDENTITIES):
        source = identified_dicom(tmp_path / f"p{number}.dcm", identity)
        out = tmp_path / f"p{number}.png"
        assert cli.main(["render", str(source), "-o", str(out)]) == 0
        outputs.append(out.read_bytes())
        for text in identifier_strings(identity):
            assert text not in outputs[-1]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("caption", [True, False])
def test_anonymised_export_contains_no_identifiers(qtbot, make_window, tmp_path: Path, caption: bool) -> None:
    export_actions = pytest.importorskip("cxrviewer.ui.features.export_actions")

    pictures: dict[tuple[int, bool], np.ndarray] = {}
    for number, identity in enumerate(IDENTITIES):
        window = make_window(size=(1100, 760))
        source = identified_dicom(tmp_path / f"patient{number}.dcm", identity)
        open_and_wait(qtbot, window, [source])
        for anonymise in (True, False):
            window.set_anonymise(anonymise)
            sidecar = export_actions.canvas_sidecar(window.canvas, anonymise=anonymise)
            target = tmp_path / f"export_{number}_{anonymise}.png"
            result = export_actions.export_view_png(window.canvas, target, sidecar,
                                                    anonymise=window.is_anonymised(), caption=caption)
            png, record = result.png.read_bytes(), result.sidecar.read_bytes()
            pictures[(number, anonymise)] = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
            if anonymise:
                for text in identifier_strings(identity):
                    assert text not in png and text not in record, text
                assert json.loads(record)["export"]["anonymised"] is True
        window.close()

    assert pictures[(0, True)].shape == pictures[(1, True)].shape
    assert np.array_equal(pictures[(0, True)], pictures[(1, True)]), "an anonymised export shows identifiers"
    # The check can see identifiers: without anonymise the two patients' exports differ.
    assert not np.array_equal(pictures[(0, False)], pictures[(1, False)])
