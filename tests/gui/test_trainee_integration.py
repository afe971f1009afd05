"""The trainee features in the real MainWindow with tiny random-weight models.

Read first hides the AI result until a call is recorded, then reveals it and stores the read
(image hash only) in the reads database; a map below the model's operating threshold waits for
"Show anyway"; the sanity check runs in the inference thread; exports with anonymise on carry
no identifiers; the model card and covid3's shortcut warning are reachable; `cxrviewer
screenshot --read-first` shows the state before the call. Whole-window pictures of the real
chest DICOM before and after the reveal go to tests/gui/_output/trainee_*.png.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt

from cxrviewer import cli
from cxrviewer.core.model.runtime import image_key
from cxrviewer.teaching.export_view import find_identifiers
from cxrviewer.teaching.reads import STORE_FILENAME
from cxrviewer.ui.features.ai import READ_FIRST_CAPTION
from cxrviewer.ui.features.export_actions import grab_view
from cxrviewer.ui.shell.settings import ViewerSettings
from tests.model_factory import EXPORT_SAFE_BACKBONE, make_model_folder
from tests.shared_data import shared_dir

from .helpers import open_and_wait, send_mouse
from .image_compare import OUTPUT_DIR, qimage_to_rgb, read_png, write_png

MODEL_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 60_000
SANITY_TIMEOUT_MS = 120_000
WINDOW_SIZE = (1400, 900)
IDENTIFIERS = ("Test^Patient", "TEST001", "Patient")
COVID_WARNING = ("Trained on adult COVID-19 images next to mostly pediatric normal and viral images: it may "
                 "detect age or hospital rather than disease.")


def _export(root: Path, name: str, threshold: float, seed: int = 0, **extra) -> None:
    make_model_folder(root, name, seed=seed, operating_threshold=threshold, backbone=EXPORT_SAFE_BACKBONE, extra=extra)


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    """tiny: maps always shown (threshold 0.05); strict: every map below its threshold (0.99);
    covid3: carries the trainer's `shortcut_warning`."""
    root = tmp_path_factory.mktemp("trainee_models")
    _export(root, "tiny", 0.05)
    _export(root, "strict", 0.99)
    _export(root, "covid3", 0.05, seed=3, shortcut_warning=COVID_WARNING)
    return root


def chest_pixels(rows: int = 240, cols: int = 200) -> np.ndarray:
    """Dark "lungs" in a brighter body, uint16: something a map and a lung mask can find."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    body = 2600.0 - 600.0 * ((xx - cols / 2) / (cols / 2)) ** 2
    for cx in (0.3, 0.7):
        lung = ((xx - cx * cols) / (0.16 * cols)) ** 2 + ((yy - 0.45 * rows) / (0.3 * rows)) ** 2 < 1.0
        body[lung] -= 1500.0
    body += np.random.default_rng(1).normal(0, 40, body.shape)
    return np.clip(body, 0, 4095).astype(np.uint16)


@pytest.fixture
def chest_dicoms(make_dicom) -> list[Path]:
    first = make_dicom(chest_pixels(), name="chest_a.dcm")
    second = make_dicom(np.roll(chest_pixels(), 30, axis=1), name="chest_b.dcm")
    return [first, second]


@pytest.fixture
def open_window(qtbot, monkeypatch, make_window, settings_file, models_root):
    """make(read_first=..., model=...): a shown MainWindow with that model loaded."""
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))

    def make(read_first: bool = True, model: str = "tiny"):
        settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
        settings.qsettings.setValue("ai/read_first", read_first)
        settings.qsettings.setValue("ai/model", model)
        window = make_window(settings, size=WINDOW_SIZE)
        qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                        timeout=MODEL_TIMEOUT_MS)
        assert window.ai.current_model() is not None, window.ai.last_error()
        assert window.ai.current_model().name == model
        return window

    return make


def results_arrived(window) -> bool:
    image = window.current_image()
    cam = window.ai.shown_cam()
    return (image is not None and cam is not None and cam.image_key == image_key(image)
            and window.ai.current_prediction() is not None)


def open_and_wait_for_ai(qtbot, window, paths) -> None:
    open_and_wait(qtbot, window, paths)
    qtbot.waitUntil(lambda: results_arrived(window), timeout=RESULT_TIMEOUT_MS)


def saturated_fraction(rgb: np.ndarray) -> float:
    channels = rgb.astype(np.int16)
    return float(((channels.max(axis=2) - channels.min(axis=2)) > 60).mean())


def click(widget, pos: QPointF) -> None:
    send_mouse(widget, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


def canvas_rgb(window) -> np.ndarray:
    window.canvas.flush_render()
    return qimage_to_rgb(window.canvas.viewport().grab())


# ----------------------------------------------------------------------------- read first
def test_read_first_hides_the_result_until_the_call_then_reveals_and_stores_the_read(
    qtbot, open_window, chest_dicoms
) -> None:
    window = open_window(read_first=True)
    ai, trainee = window.ai, window.trainee
    panel = trainee.read_first_panel
    assert window.trainee.read_first_action.isChecked() and trainee.read_first_dock.isVisible()
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    image = window.current_image()
    prediction = ai.current_prediction()

    # the result is there, but nothing of it is on screen
    assert ai.results_hidden() and panel.state() == "calling"
    assert set(ai.panel.probabilities_shown().values()) == {0.0}
    assert not ai.panel.results_box.isEnabled() and "Read first" in ai.panel.message_label.text()
    assert ai.panel.top_label.text() == "Top class: —"
    assert ai.controls.class_combo.itemText(0) == "Model's call"       # not "Model's call (VIRAL)"
    assert ai.panel.caption() == READ_FIRST_CAPTION and ai.panel.gate_text() == ""
    assert ai.overlay.has_overlay() and not ai.overlay.isVisible() and ai.legend.isHidden()
    assert saturated_fraction(canvas_rgb(window)) == 0.0                 # no colour on the film
    sidecar = trainee.exports.sidecar()
    assert sidecar["prediction"] is None and sidecar["overlay"] is None
    assert sidecar["export"]["read_first"] == "before reveal"
    assert not trainee.read_first.ai_visible()

    # the call, a point, the reveal
    panel.set_call("viral", 70)
    panel.mark_button.click()
    rows, cols = image.shape
    canvas = window.canvas
    with qtbot.waitSignal(trainee.picker.point_picked, timeout=2000):
        click(canvas.viewport(), canvas.image_to_viewport(QPointF(cols * 0.3, rows * 0.45)))
    with qtbot.waitSignal(trainee.read_first.read_saved, timeout=RESULT_TIMEOUT_MS) as saved:
        panel.reveal_button.click()
    record = saved.args[0]

    assert trainee.read_first.ai_visible() and not ai.results_hidden() and panel.is_revealed()
    shown = ai.panel.probabilities_shown()
    assert shown == pytest.approx(dict(zip(prediction.labels, prediction.probabilities)))
    assert ai.panel.top_label.text().startswith(f"Top class: {prediction.top_label}")
    assert ai.overlay.isVisible() and not ai.legend.isHidden()
    assert f"p = {prediction.probability(prediction.top_label):.2f}" in ai.legend.text.text()
    assert ai.panel.caption().startswith(f"Heat map for {prediction.top_label} — p = ")
    assert saturated_fraction(canvas_rgb(window)) > 0.02                 # the map is on the film now
    comparison = trainee.read_first.last_comparison
    assert comparison is not None and comparison.model_top_label == prediction.top_label
    assert comparison.point_heat is not None                            # the point was checked against the map
    assert "You: <b>Viral</b>" in panel.comparison_label.text()
    assert trainee.exports.sidecar()["prediction"]["top_label"] == prediction.top_label

    # the read is in the SQLite database in CXRVIEWER_DATA_DIR: the image hash, no patient data
    db_path = Path(os.environ["CXRVIEWER_DATA_DIR"]) / STORE_FILENAME
    assert db_path.is_file()
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        rows_ = [dict(row) for row in db.execute("SELECT * FROM reads")]
    assert len(rows_) == 1 and rows_[0]["id"] == record.id
    row = rows_[0]
    assert row["image_sha256"] == image.sha256 and len(image.sha256) == 64
    assert row["call"] == "viral" and row["confidence"] == 70 and row["model_name"] == "tiny"
    assert json.loads(row["model_probabilities"]) == pytest.approx(list(prediction.probabilities))
    dumped = " ".join(str(value) for value in row.values())
    for secret in (*IDENTIFIERS, chest_dicoms[0].name, str(chest_dicoms[0].parent)):
        assert secret not in dumped
    raw = db_path.read_bytes()
    assert b"TEST001" not in raw and b"Test^Patient" not in raw and b"chest_a" not in raw

    # the next image starts a new read: hidden again
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[1]])
    assert ai.results_hidden() and panel.state() == "calling" and not ai.overlay.isVisible()
    assert set(ai.panel.probabilities_shown().values()) == {0.0}
    # back to the first image after revealing the second: its result comes from the cache at
    # once, and is still hidden for the new read
    panel.set_call("normal", 40)
    with qtbot.waitSignal(trainee.read_first.read_saved, timeout=RESULT_TIMEOUT_MS):
        panel.reveal_button.click()
    assert ai.overlay.isVisible()
    requests = ai.requests_sent
    open_and_wait(qtbot, window, [chest_dicoms[0]])
    assert ai.requests_sent == requests and results_arrived(window)     # cached, no new request
    assert ai.results_hidden() and panel.state() == "calling" and not ai.overlay.isVisible()
    assert set(ai.panel.probabilities_shown().values()) == {0.0} and ai.legend.isHidden()
    assert not any(w.code == "unsure" for w in trainee.ood_banner.warnings())   # says nothing of the result


def test_turning_read_first_off_shows_the_result_at_once(qtbot, open_window, chest_dicoms) -> None:
    window = open_window(read_first=True)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    assert window.ai.results_hidden()
    window.trainee.read_first_action.setChecked(False)
    assert not window.ai.results_hidden() and window.ai.overlay.isVisible()
    assert sum(window.ai.panel.probabilities_shown().values()) == pytest.approx(1.0, abs=1e-5)
    assert window.settings.qsettings.value("ai/read_first") in (False, "false")
    assert window.trainee.exports.sidecar()["export"].get("read_first") is None


# ----------------------------------------------------------------------------- honest maps
def test_borderline_call_gate_and_hand_picked_class_say_the_same_thing(qtbot, open_window, chest_dicoms) -> None:
    """Threshold 0.99: the top class is a pneumonia subtype, but the model CALLS NORMAL. The panel's headline,
    the default map and the gate all say NORMAL; a class picked by hand shows its map with the call beside it."""
    from cxrviewer.ui.docks.overlay_controls import CamTarget

    window = open_window(read_first=False, model="strict")
    ai = window.ai
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    prediction = ai.current_prediction()
    call = ai.current_call()
    assert call is not None and call.label == "NORMAL" and prediction.top_label != "NORMAL"
    qtbot.waitUntil(lambda: ai.shown_cam() is not None and ai.shown_cam().class_index == 0, timeout=RESULT_TIMEOUT_MS)
    gate = ai.heatmap_gate()
    assert gate is not None and gate.call == "NORMAL" and gate.shown_by_default and gate.threshold == pytest.approx(0.99)
    assert "Model's call: <b>NORMAL</b>" in ai.panel.call_text()
    assert "below the operating threshold 99.0 %" in ai.panel.call_text()
    assert ai.controls.class_combo.itemText(0) == "Model's call (NORMAL)"
    assert ai.overlay.isVisible() and ai.panel.caption().startswith("Heat map for NORMAL")
    assert not ai.panel.show_anyway_button.isVisible()
    write_png(OUTPUT_DIR / "trainee_borderline_call.png", qimage_to_rgb(window.grab()))
    from .image_compare import assert_matches_golden

    qtbot.wait(50)
    assert_matches_golden("borderline_call_ai_panel", qimage_to_rgb(ai.panel.grab()), mean_tol=3.0, max_fraction=0.01)

    picked = prediction.top_index
    ai.controls.set_target(CamTarget(picked, ai.controls.target().method, None))
    qtbot.waitUntil(lambda: ai.shown_cam() is not None and ai.shown_cam().class_index == picked,
                    timeout=RESULT_TIMEOUT_MS)
    assert ai.overlay.isVisible() and ai.is_shown_anyway() and not ai.panel.show_anyway_button.isVisible()
    assert ai.panel.gate_text().startswith(f"Shown anyway: this map explains {prediction.top_label}")
    assert "but the model calls NORMAL (pneumonia probability" in ai.panel.gate_text()
    assert "(not the call: NORMAL)" in ai.legend.text.text() and not ai.legend.isHidden()
    assert saturated_fraction(canvas_rgb(window)) > 0.02
    assert window.trainee.exports.sidecar()["overlay"]["shown_below_operating_threshold"] is True
    assert window.trainee.exports.sidecar()["prediction"]["call"]["label"] == "NORMAL"
    write_png(OUTPUT_DIR / "trainee_hand_picked_class.png", qimage_to_rgb(window.grab()))

    # the absolute scale: numbers on the panel's colour bar and on the legend
    ai.controls.set_normalisation("absolute")
    top = ai.controls.absolute_max()
    assert ai.controls.colour_bar.labels()[0] == "0" and ai.legend.colour_bar.labels()[0] == "0"
    assert ai.legend.colour_bar.labels() == ai.controls.colour_bar.labels() and top > 0

    # another image: the hand-picked class stays chosen, and says again that it is not the call
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[1]])
    if ai.current_call().label != ai.current_model().labels[picked]:
        qtbot.waitUntil(lambda: ai.shown_cam() is not None, timeout=RESULT_TIMEOUT_MS)
        assert ai.is_shown_anyway() and ai.panel.gate_text().startswith("Shown anyway")


def test_map_above_the_threshold_is_shown_with_its_probability(qtbot, open_window, chest_dicoms) -> None:
    window = open_window(read_first=False, model="tiny")
    ai = window.ai
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    assert ai.heatmap_gate().shown_by_default and ai.overlay.isVisible()
    assert ai.panel.gate_text() == "" and not ai.panel.show_anyway_button.isVisible()
    legend = ai.legend
    assert not legend.isHidden() and legend.parent() is window.canvas
    viewport = window.canvas.viewport().geometry()
    assert viewport.contains(legend.geometry())                          # on the image area
    ai.controls.show_check.setChecked(False)
    assert legend.isHidden()


# ----------------------------------------------------------------------------- sanity check
def test_sanity_check_runs_in_the_worker_and_reports_a_correlation(
    qtbot, monkeypatch, open_window, chest_dicoms
) -> None:
    window = open_window(read_first=False)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    cam = window.ai.shown_cam()
    with qtbot.waitSignal(window.ai.service.sanity_ready, timeout=SANITY_TIMEOUT_MS) as ready:
        window.trainee.sanity_action.trigger()
    outcome = ready.args[0]
    result = outcome.result
    assert result.model_name == "tiny" and result.class_index == cam.class_index and result.layer == cam.layer
    assert isinstance(result.rank_correlation, float) and -1.0 <= result.rank_correlation <= 1.0
    np.testing.assert_allclose(result.real_cam, cam.cam, rtol=1e-4, atol=1e-6)  # the map that is shown
    randomisation, lung = window.trainee.sanity.last
    assert randomisation is result and lung is not None
    dialog = window.trainee.sanity.dialog
    summary = dialog.summary_text()
    assert f"<b>{result.rank_correlation:.2f}</b>" in summary and "outside the lungs" in summary
    assert not ("<b>Passed:</b>" in summary and "Shortcut warning" in summary)   # never "Passed" beside a warning
    assert ("<b>Passed:</b>" in summary) or ("<b>Warning:</b>" in summary) or ("but see the shortcut warning" in summary)
    assert "Sanity check on this image" in dialog.view.plain_text()
    qtbot.waitUntil(lambda: dialog.audit_result is not None, timeout=SANITY_TIMEOUT_MS)   # the explanation audit
    audit = dialog.audit_text()
    assert "Explanation audit" in audit and "Deletion curve area" in audit and "Removing the hottest 20 %" in audit
    assert dialog.audit_result.class_index == cam.class_index and dialog.audit_result.layer == cam.layer
    write_png(OUTPUT_DIR / "trainee_sanity_dialog_audit.png", qimage_to_rgb(dialog.grab()))
    qtbot.wait(50)
    write_png(OUTPUT_DIR / "trainee_sanity_dialog.png", qimage_to_rgb(dialog.grab()))
    # the model is unchanged: the same image gives the same map again
    again = window.ai.service.request(window.current_image(), cam.class_index, cam.method, cam.layer)
    with qtbot.waitSignal(window.ai.service.cam_ready, timeout=RESULT_TIMEOUT_MS,
                          check_params_cb=lambda c: c.request_id == again) as blocker:
        pass
    np.testing.assert_allclose(blocker.args[0].cam, cam.cam, rtol=1e-4, atol=1e-6)

    # asking again about the same map answers at once from the cache: no second computation
    dialog.close()
    asked: list[int] = []
    real_request = window.ai.service.request_sanity
    monkeypatch.setattr(window.ai.service, "request_sanity", lambda *a, **k: asked.append(1) or real_request(*a, **k))
    with qtbot.assertNotEmitted(window.ai.service.sanity_ready, wait=300):
        again_dialog = window.trainee.sanity.run()
    assert asked == [] and window.trainee.sanity.last[0] is result
    assert again_dialog.summary_text() == summary


def test_closing_the_sanity_dialog_cancels_the_check(qtbot, monkeypatch, open_window, chest_dicoms) -> None:
    window = open_window(read_first=False)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    cancels: list[int] = []
    real_cancel = window.ai.service.cancel_sanity
    monkeypatch.setattr(window.ai.service, "cancel_sanity", lambda: (cancels.append(1), real_cancel()))
    with qtbot.assertNotEmitted(window.ai.service.sanity_ready, wait=3000):
        dialog = window.trainee.sanity.run()
        dialog.close()
    assert cancels == [1]
    assert window.trainee.sanity.dialog is None and window.trainee.sanity.last is None


def test_sanity_check_waits_for_the_call_in_read_first(qtbot, open_window, chest_dicoms) -> None:
    window = open_window(read_first=True)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    with qtbot.assertNotEmitted(window.ai.service.sanity_ready, wait=200):
        assert window.trainee.sanity.run() is None
    assert "record your call" in window.notice.label.text()


# ----------------------------------------------------------------------------- exports
def test_exports_from_the_window_with_anonymise_on_carry_no_identifiers(
    qtbot, open_window, chest_dicoms, tmp_path: Path
) -> None:
    window = open_window(read_first=True)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    image = window.current_image()
    assert image.metadata.get("PatientName") and image.metadata.get("PatientID") == "TEST001"
    trainee = window.trainee
    trainee.read_first_panel.set_call("bacterial", 60)
    with qtbot.waitSignal(trainee.read_first.read_saved, timeout=RESULT_TIMEOUT_MS):
        trainee.read_first_panel.reveal_button.click()
    window.set_anonymise(True)

    result = trainee.exports.export_view(tmp_path / "view.png")
    assert result is not None and result.png.is_file() and result.sidecar == tmp_path / "view.json"
    text = result.sidecar.read_text(encoding="utf-8")
    sidecar = json.loads(text)
    assert sidecar["image"]["sha256"] == image.sha256 and sidecar["export"]["anonymised"] is True
    assert sidecar["export"]["read_first"] == "revealed" and sidecar["prediction"] is not None
    assert sidecar["overlay"]["visible"] is True and sidecar["model"]["name"] == "tiny"
    assert find_identifiers(text, image.metadata) == []
    for secret in (*IDENTIFIERS, chest_dicoms[0].name):
        assert secret not in text
    png_bytes = result.png.read_bytes()
    assert b"TEST001" not in png_bytes and b"Test^Patient" not in png_bytes

    # the picture's corner text is the anonymised one, not the identifying one the screen can show
    shot = read_png(result.png)
    window.canvas.flush_render()
    anonymised = qimage_to_rgb(grab_view(window.canvas, "anonymised"))
    height, width = anonymised.shape[:2]
    assert shot.shape[1] == width and shot.shape[0] > height            # + the caption band
    corner = (slice(0, 60), slice(0, width // 2))
    assert np.abs(shot[:height][corner].astype(int) - anonymised[corner]).mean() < 1.0
    window.set_anonymise(False)
    named = qimage_to_rgb(grab_view(window.canvas, "as_shown"))
    assert any("Test" in line or "TEST001" in line for line in window.canvas.corner_text().all_lines())
    assert np.abs(named[corner].astype(int) - anonymised[corner]).mean() > 1.0   # the check can fail
    window.set_anonymise(True)

    assert trainee.exports.copy_view()
    from PySide6.QtGui import QGuiApplication

    clipboard = QGuiApplication.clipboard().image()
    assert not clipboard.isNull() and clipboard.width() == result.size[0]

    pdf = trainee.exports.export_case_report(tmp_path / "case.pdf")
    assert pdf == tmp_path / "case.pdf" and pdf.read_bytes().startswith(b"%PDF")
    assert b"TEST001" not in pdf.read_bytes()
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: the PDF's text is not checked")
    pdf_text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Bacterial" in pdf_text and "tiny" in pdf_text                 # the extraction works
    assert find_identifiers(pdf_text, image.metadata) == []
    for secret in (*IDENTIFIERS, chest_dicoms[0].name):
        assert secret not in pdf_text


def test_export_before_the_reveal_leaves_the_ai_out(qtbot, open_window, chest_dicoms, tmp_path: Path) -> None:
    window = open_window(read_first=True)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    window.set_anonymise(True)
    result = window.trainee.exports.export_view(tmp_path / "before.png")
    assert result is not None, window.notice.label.text()
    sidecar = json.loads(result.sidecar.read_text(encoding="utf-8"))
    assert sidecar["prediction"] is None and sidecar["overlay"] is None
    assert sidecar["export"]["read_first"] == "before reveal"
    shot = read_png(result.png)
    assert saturated_fraction(shot) == 0.0                               # no map in the picture


def test_export_problem_is_a_notice(qtbot, open_window, chest_dicoms, tmp_path: Path) -> None:
    window = open_window(read_first=False)
    open_and_wait_for_ai(qtbot, window, [chest_dicoms[0]])
    assert window.trainee.exports.export_view(tmp_path / "missing" / "view.png") is None
    assert "Export failed" in window.notice.label.text() and not window.notice.isHidden()


# ----------------------------------------------------------------------------- model card
def test_model_card_from_help_and_the_ai_panel(qtbot, open_window) -> None:
    window = open_window(read_first=False)
    assert window.trainee.model_card_action in window.menu("help").actions()
    window.trainee.model_card_action.trigger()
    dialog = window.trainee.model_card.dialog
    assert dialog.isVisible() and dialog.windowTitle() == "Model card — tiny"
    assert "Operating threshold 0.05" in dialog.view.plain_text()
    dialog.close()
    window.ai.panel.model_card_button.click()
    assert window.trainee.model_card.dialog is not dialog and window.trainee.model_card.dialog.isVisible()
    assert window.ai.panel.shortcut_warning_text() == ""                 # tiny has no shortcut warning
    window.trainee.model_card.dialog.close()
    for name in ("my_reads", "sanity_check", "read_first"):
        assert any(a.objectName() == f"action_{name}" for a in window.menu("tools").actions()), name
    for name in ("export_view", "copy_view", "case_report"):
        assert any(a.objectName() == f"action_{name}" for a in window.menu("file").actions()), name


def test_covid3_shows_its_shortcut_warning_in_the_ai_panel(qtbot, open_window) -> None:
    window = open_window(read_first=False, model="covid3")
    panel = window.ai.panel
    assert panel.shortcut_label.isVisible()
    assert "Shortcut warning" in panel.shortcut_warning_text() and "age or hospital" in panel.shortcut_warning_text()
    write_png(OUTPUT_DIR / "trainee_covid3_panel.png", qimage_to_rgb(panel.grab()))
    window.ai.switch_model("tiny")
    assert panel.shortcut_label.isHidden()
    qtbot.waitUntil(lambda: window.ai.current_model() is not None, timeout=MODEL_TIMEOUT_MS)
    assert panel.shortcut_label.isHidden()


def test_my_reads_opens_on_the_store(qtbot, open_window) -> None:
    window = open_window(read_first=True)
    dialog = window.trainee.my_reads.open()
    assert dialog is not None and dialog.isVisible()
    assert window.trainee.read_first.store_path() == Path(os.environ["CXRVIEWER_DATA_DIR"]) / STORE_FILENAME
    dialog.close()


def test_a_my_reads_row_opens_its_image(qtbot, open_window, chest_dicoms) -> None:
    """Read the second image, go back to the first, double-click the read in My Reads: the second is shown."""
    window = open_window(read_first=True)
    open_and_wait_for_ai(qtbot, window, chest_dicoms)
    window.next_image()
    qtbot.waitUntil(lambda: window.current_image() is not None and Path(window.current_image().path) == chest_dicoms[1],
                    timeout=RESULT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.ai.current_prediction() is not None, timeout=RESULT_TIMEOUT_MS)
    panel = window.trainee.read_first_panel
    panel.set_call("viral", 70)
    panel.reveal_button.click()
    qtbot.waitUntil(panel.is_revealed, timeout=RESULT_TIMEOUT_MS)
    read_sha = window.current_image().sha256
    window.previous_image()
    qtbot.waitUntil(lambda: window.current_image() is not None and Path(window.current_image().path) == chest_dicoms[0],
                    timeout=RESULT_TIMEOUT_MS)
    dialog = window.trainee.my_reads.open()
    rows = [dialog.table.item(r, 1).toolTip() for r in range(dialog.table.rowCount())]
    row = next(r for r, tip in enumerate(rows) if read_sha in tip)
    with qtbot.waitSignal(window.image_changed, timeout=RESULT_TIMEOUT_MS):
        dialog.table.cellDoubleClicked.emit(row, 0)
    assert Path(window.current_image().path) == chest_dicoms[1]
    dialog.close()
    # a hash that is not in the open study: a note, nothing else changes
    assert window.trainee.my_reads.open_read_image("0" * 64) is False
    assert window.current_path() == chest_dicoms[1]


# ----------------------------------------------------------------------------- screenshots
def test_screenshot_command_read_first_hides_the_ai(qapp, monkeypatch, models_root, tmp_path: Path) -> None:
    from .synthetic import write_png as write_gray
    from .test_ai_screenshots import chest_like

    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    image = write_gray(tmp_path / "chest.png", (chest_like() / 12).clip(0, 255).astype(np.uint8))
    shots = {}
    for name, extra in (("pre", ["--read-first"]), ("ai", [])):
        out = tmp_path / f"{name}.png"
        code = cli.main(["screenshot", str(image), "-o", str(out), "--model", "tiny", "--timeout", "300", *extra])
        assert code == 0
        shots[name] = read_png(out)
    canvas_area = (slice(120, 780), slice(330, 950))
    assert saturated_fraction(shots["pre"][canvas_area]) == 0.0
    assert saturated_fraction(shots["ai"][canvas_area]) > 0.05


@pytest.mark.skipif(shared_dir() is None or not (shared_dir() / "dicom" / "cr_chest_mono2_jpeg_baseline.dcm").is_file(),
                    reason="../shared/dicom/cr_chest_mono2_jpeg_baseline.dcm not present")
def test_whole_window_before_and_after_the_reveal_with_the_real_chest_dicom(qtbot, open_window) -> None:
    """Not goldens (the JPEG decoder and the random model decide the pixels): pictures to look at."""
    dicom = shared_dir() / "dicom" / "cr_chest_mono2_jpeg_baseline.dcm"
    window = open_window(read_first=True)
    window.setFixedSize(*WINDOW_SIZE)
    open_and_wait_for_ai(qtbot, window, [dicom])
    trainee = window.trainee
    panel = trainee.read_first_panel
    rows, cols = window.current_image().shape
    panel.set_call("bacterial", 65)
    panel.set_marked_point(cols * 0.3, rows * 0.55)
    trainee.picker.show_marker(cols * 0.3, rows * 0.55)
    qtbot.wait(50)
    window.canvas.flush_render()
    before = qimage_to_rgb(window.grab())
    write_png(OUTPUT_DIR / "trainee_pre_reveal.png", before)
    assert before.shape == (WINDOW_SIZE[1], WINDOW_SIZE[0], 3)
    assert saturated_fraction(canvas_rgb(window)) < 0.002                # only the cyan point marker
    with qtbot.waitSignal(trainee.read_first.read_saved, timeout=RESULT_TIMEOUT_MS):
        panel.reveal_button.click()
    qtbot.wait(50)
    window.canvas.flush_render()
    after = qimage_to_rgb(window.grab())
    write_png(OUTPUT_DIR / "trainee_revealed.png", after)
    assert saturated_fraction(canvas_rgb(window)) > 0.05
    legend = window.ai.legend                                            # still on the image after the
    assert legend.isVisible() and window.canvas.viewport().geometry().contains(legend.geometry())  # banner




# ----------------------------------------------------------------------------- the service alone
def test_sanity_request_without_a_model_fails_clearly(qtbot) -> None:
    from cxrviewer.ui.workers.inference_service import InferenceService
    from tests.model_factory import make_xray

    service = InferenceService()
    try:
        with qtbot.waitSignal(service.sanity_failed, timeout=10_000) as failed:
            request_id = service.request_sanity(make_xray(64))
        assert failed.args[0] == request_id and "No AI model is loaded" in failed.args[1]
    finally:
        service.shutdown()


def test_a_cancelled_sanity_check_is_skipped_by_the_worker(qtbot, tmp_path) -> None:
    """Queued behind a slow heat map, then cancelled: the worker never runs it and nothing answers.
    (The fake engine has no TensorFlow, so a sanity check that does run answers with an error.)"""
    from cxrviewer.core.inference.worker import WorkerOptions
    from cxrviewer.ui.workers.inference_service import InferenceService
    from tests.fake_engine import FACTORY
    from tests.model_factory import make_xray

    service = InferenceService(options=WorkerOptions(str(tmp_path), FACTORY, preload_tensorflow=False))
    try:
        with qtbot.waitSignal(service.model_ready, timeout=60_000):
            service.switch_model("slow-600")
        request_id = service.request(make_xray(64, seed=3))
        service.request_sanity(make_xray(64, seed=3))
        service.cancel_sanity()
        with qtbot.assertNotEmitted(service.sanity_ready), qtbot.assertNotEmitted(service.sanity_failed):
            with qtbot.waitSignal(service.cam_ready, timeout=RESULT_TIMEOUT_MS,
                                  check_params_cb=lambda cam: cam.request_id == request_id):
                pass
            qtbot.wait(300)
        # the same without cancelling: it runs (and fails, no TensorFlow in the fake)
        with qtbot.waitSignal(service.sanity_failed, timeout=RESULT_TIMEOUT_MS):
            service.request_sanity(make_xray(64, seed=3))
    finally:
        service.shutdown()
