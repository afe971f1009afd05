"""The case report from the real window carries the explanation audit of the map on screen once
Tools › Sanity check has run it (from the service's cache, no second computation), and says
"not run" before (#16 item 3)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from cxrviewer.core.model.runtime import image_key
from cxrviewer.teaching.export_view import AUDIT_NOT_RUN
from cxrviewer.ui.shell.settings import ViewerSettings
from tests.model_factory import EXPORT_SAFE_BACKBONE, make_model_folder

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR

MODEL_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 60_000
AUDIT_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit_models")
    make_model_folder(root, "tiny", operating_threshold=0.05, backbone=EXPORT_SAFE_BACKBONE)
    return root


def pdf_words(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: the PDF's text is not checked")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def test_the_case_report_has_the_audit_once_the_sanity_check_ran_it(qtbot, monkeypatch, make_window, settings_file,
                                                                     models_root, make_dicom, tmp_path):
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    settings.qsettings.setValue("ai/read_first", False)
    settings.qsettings.setValue("ai/model", "tiny")
    window = make_window(settings, size=(1400, 900))
    qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                    timeout=MODEL_TIMEOUT_MS)
    rng = np.random.default_rng(3)
    open_and_wait(qtbot, window, [make_dicom(rng.integers(500, 3500, (200, 180)).astype(np.uint16), name="c.dcm")])
    qtbot.waitUntil(lambda: window.ai.shown_cam() is not None
                    and window.ai.shown_cam().image_key == image_key(window.current_image()), timeout=RESULT_TIMEOUT_MS)

    before = pdf_words(window.trainee.exports.export_case_report(tmp_path / "before.pdf"))
    assert AUDIT_NOT_RUN in before

    window.trainee.sanity_action.trigger()
    dialog = window.trainee.sanity.dialog
    qtbot.waitUntil(lambda: dialog.audit_result is not None, timeout=AUDIT_TIMEOUT_MS)
    audit = dialog.audit_result
    dialog.close()
    asked: list[int] = []
    monkeypatch.setattr(window.ai.service, "request_audit", lambda *a, **k: asked.append(1) or -1)
    after = pdf_words(window.trainee.exports.export_case_report(tmp_path / "after.pdf"))
    assert asked == []                                          # the report never starts an audit
    assert " ".join(audit.verdict().split()) in after and AUDIT_NOT_RUN not in after
    assert f"deletion curve area {audit.deletion_area:.2f} vs {audit.random_deletion_area:.2f}" in after
    if shutil.which("pdftoppm") is not None:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(tmp_path / "after.pdf"),
                        str(OUTPUT_DIR / "case_report_window_audit")], check=True)
