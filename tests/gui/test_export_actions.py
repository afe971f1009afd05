"""File ▸ Export: the view as shown (PNG + sidecar), the clipboard, and the PDF case report — anonymised."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem

from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.types import Prediction, Window
from cxrviewer.core.xai.overlay import cam_index_image, colorize, colormap_lut
from cxrviewer.teaching.export_view import ExportError, OverlayState, find_identifiers
from cxrviewer.teaching.reads import ReadCall, compare_read
from cxrviewer.ui.features.export_actions import (
    canvas_sidecar,
    copy_view_to_clipboard,
    export_pdf,
    export_view_png,
    exported_view,
    grab_view,
    qimage_to_rgb,
)
from cxrviewer.ui.viewer.canvas import ImageCanvas

from .helpers import make_xray
from .image_compare import OUTPUT_DIR, compare_images, read_png, write_png
from .synthetic import gradient

METADATA = {
    "PatientName": "Doe^Jane", "PatientID": "PID-12345", "PatientBirthDate": "19700102", "PatientSex": "F",
    "AccessionNumber": "ACC-777", "InstitutionName": "Teaching Hospital", "StudyDate": "20240315",
    "StudyDescription": "Chest PA", "Modality": "CR", "ViewPosition": "PA",
}
CARD = ModelCard(name="pneumonia3", labels=("NORMAL", "BACTERIAL", "VIRAL"), input_size=192,
                 backbone="densenet121", cam_layer="relu", weights_file="model.keras", weights_sha256="cd" * 32,
                 operating_threshold=0.42)
VIEW = (480, 400)
TOP_LEFT = np.s_[0:60, 0:220]          # where the patient's name, ID and birth date are drawn


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.setFixedSize(*VIEW)
    view.show()
    qtbot.waitExposed(view)
    image = make_xray(gradient(200, 400), window=Window(2000, 4000), metadata=METADATA, name="Doe_Jane.dcm")
    view.set_image(dataclasses.replace(image, sha256=hashlib.sha256(b"doe").hexdigest()))
    view.flush_render()
    return view


def add_overlay(canvas: ImageCanvas) -> QGraphicsPixmapItem:
    image = canvas.image()
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1.0
    rgba = colorize(cam_index_image(cam, image.shape), colormap_lut("jet"), 0.2)
    item = QGraphicsPixmapItem(QPixmap.fromImage(
        QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.shape[1] * 4, QImage.Format.Format_RGBA8888).copy()))
    item.setOpacity(0.5)
    canvas.add_overlay_item(item, 10)
    return item


def sidecar_for(canvas: ImageCanvas, anonymise: bool = True) -> dict:
    prediction = Prediction(3, "k", "pneumonia3", CARD.labels, (0.15, 0.7, 0.15))
    overlay = OverlayState("gradcam", "relu", 1, "BACTERIAL", threshold=0.2, opacity=0.5, colormap="jet")
    return canvas_sidecar(canvas, anonymise=anonymise, card=CARD, prediction=prediction, overlay=overlay)


def has_text(region: np.ndarray) -> bool:
    """Light glyph pixels on the black background around the image."""
    return bool((region.max(axis=2) > 150).sum() > 20)


def test_grab_view_modes(canvas: ImageCanvas) -> None:
    canvas.set_anonymise(False)
    named = qimage_to_rgb(grab_view(canvas, "as_shown"))
    anonymised = qimage_to_rgb(grab_view(canvas, "anonymised"))
    bare = qimage_to_rgb(grab_view(canvas, "none"))
    assert named.shape == anonymised.shape == bare.shape == (VIEW[1], VIEW[0], 3)
    assert not canvas.is_anonymised()                               # the screen's setting is restored
    assert not compare_images(named[TOP_LEFT], anonymised[TOP_LEFT]).ok
    canvas.set_anonymise(True)
    on_screen = qimage_to_rgb(canvas.viewport().grab().toImage())
    assert compare_images(anonymised[TOP_LEFT], on_screen[TOP_LEFT], mean_tol=0.5, max_fraction=0.001).ok
    assert has_text(anonymised[TOP_LEFT]) and not has_text(bare[TOP_LEFT])
    assert not has_text(bare[-40:, -160:])                          # window/zoom corner gone too
    middle = np.s_[150:250, 100:380]                                # the image itself is the same in all modes
    assert compare_images(bare[middle], anonymised[middle], mean_tol=1.0).ok
    with pytest.raises(ValueError):
        grab_view(canvas, "blurred")


def test_sidecar_describes_the_view(canvas: ImageCanvas) -> None:
    canvas.rotate_clockwise()
    canvas.set_zoom(2.0)
    canvas.set_window(Window(1500, 2000))
    view = exported_view(canvas)
    assert view.rotation_degrees == 90 and view.zoom == pytest.approx(2.0)
    assert view.window == Window(1500, 2000)
    x, y, w, h = view.visible_rect
    assert 0 <= x and 0 <= y and x + w <= 400 and y + h <= 200 and w < 400
    sidecar = sidecar_for(canvas)
    assert sidecar["view"]["rotation_degrees"] == 90 and sidecar["export"]["anonymised"] is True


def test_export_png_and_sidecar_anonymised(canvas: ImageCanvas, tmp_path: Path) -> None:
    add_overlay(canvas)
    canvas.set_anonymise(False)                                     # the screen shows names...
    result = export_view_png(canvas, tmp_path / "case", sidecar_for(canvas), anonymise=True)
    assert result.png == tmp_path / "case.png" and result.sidecar == tmp_path / "case.json"
    png = read_png(result.png)
    write_png(OUTPUT_DIR / "export_view_anonymised.png", png)
    assert png.shape[1] == VIEW[0] and png.shape[0] > VIEW[1]      # + the caption band
    view_part = png[: VIEW[1]]
    canvas.set_anonymise(True)
    expected = qimage_to_rgb(canvas.viewport().grab().toImage())
    assert compare_images(view_part[TOP_LEFT], expected[TOP_LEFT], mean_tol=0.5, max_fraction=0.001).ok
    assert compare_images(view_part, expected, mean_tol=1.0).ok     # ...the export the anonymised view
    colourful = np.abs(view_part.astype(int) - view_part.mean(axis=2, keepdims=True)).max(axis=2) > 60
    assert colourful.sum() > 500                                    # the heat map is in the picture
    record = json.loads(result.sidecar.read_text())
    assert record["export"]["png_sha256"] == hashlib.sha256(result.png.read_bytes()).hexdigest()
    assert record["export"]["corner_text"] == "anonymised" and record["export"]["png_size"] == [png.shape[1], png.shape[0]]
    assert record["overlay"]["class_label"] == "BACTERIAL" and record["model"]["weights_sha256"] == "cd" * 32
    text = result.sidecar.read_text()
    assert find_identifiers(text, METADATA) == [] and "Doe" not in text and "dcm" not in text


def test_export_without_anonymise_keeps_the_screen_text_but_not_in_the_sidecar(canvas, tmp_path: Path) -> None:
    canvas.set_anonymise(False)
    result = export_view_png(canvas, tmp_path / "named.png", sidecar_for(canvas, anonymise=False),
                             anonymise=False, caption=False)
    png = read_png(result.png)
    assert png.shape == (VIEW[1], VIEW[0], 3)
    named = qimage_to_rgb(grab_view(canvas, "as_shown"))
    assert compare_images(png[TOP_LEFT], named[TOP_LEFT], mean_tol=0.5).ok
    assert find_identifiers(result.sidecar.read_text(), METADATA) == []


def test_export_refuses_a_sidecar_with_identifiers(canvas, tmp_path: Path) -> None:
    leaky = dict(sidecar_for(canvas), comment="for Doe^Jane")
    with pytest.raises(ExportError, match="patient identifiers"):
        export_view_png(canvas, tmp_path / "leak.png", leaky, anonymise=True)
    assert list(tmp_path.iterdir()) == []                           # nothing written


def test_export_to_an_unwritable_place(canvas, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="x.png"):
        export_view_png(canvas, tmp_path / "missing" / "x.png", sidecar_for(canvas), anonymise=True)


def test_copy_to_clipboard(canvas) -> None:
    canvas.set_anonymise(False)
    image = copy_view_to_clipboard(canvas, sidecar_for(canvas), anonymise=True)
    pasted = QGuiApplication.clipboard().image()
    assert not pasted.isNull() and pasted.size() == image.size()
    assert compare_images(qimage_to_rgb(pasted)[TOP_LEFT], qimage_to_rgb(grab_view(canvas, "anonymised"))[TOP_LEFT],
                          mean_tol=0.5).ok


def test_pdf_case_report(canvas, tmp_path: Path) -> None:
    add_overlay(canvas)
    call = ReadCall("bacterial", 70, (250.0, 60.0))
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1.0
    comparison = compare_read(call, "pneumonia3", CARD.labels, (0.15, 0.7, 0.15), cam, canvas.image().shape, 0.5)
    path = export_pdf(canvas, tmp_path / "case", sidecar_for(canvas), anonymise=True, call=call,
                      comparison=comparison, warnings=("Adult patient: trained on children.",), audit=make_audit())
    assert path == tmp_path / "case.pdf" and path.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils not installed: the PDF's text and look are not checked")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Trainee call: Bacterial, confidence 70 %" in text and "inside the hot region" in text
    words = " ".join(text.split())
    assert "the map points at what the model uses." in words and "identifiers hidden" in words   # all on the page
    assert find_identifiers(text, METADATA) == []
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-singlefile", str(path), str(OUTPUT_DIR / "case_report")],
                   check=True)
    page = read_png(OUTPUT_DIR / "case_report.png")
    assert page.shape[0] > page.shape[1]                            # portrait A4


def test_anonymise_always_wins_over_as_shown() -> None:
    from cxrviewer.ui.features.export_actions import corner_text_mode

    assert corner_text_mode(True) == "anonymised"
    assert corner_text_mode(True, "as_shown") == "anonymised"
    assert corner_text_mode(True, "none") == "none"
    assert corner_text_mode(False) == "as_shown"
    assert corner_text_mode(False, "anonymised") == "anonymised"


# -------------------------------------------------------------- the explanation audit in the case report
def make_audit(class_index: int = 1, method: str = "gradcam", layer: str = "relu"):
    from cxrviewer.core.xai.audit import STEPS, AuditResult

    fractions = np.linspace(0.0, 1.0, STEPS + 1)
    return AuditResult(
        class_index=class_index, class_label=CARD.labels[class_index], method=method, layer=layer,
        fractions=fractions,
        deletion=np.clip(0.91 - 2.8 * fractions, 0.05, 1.0),        # drops fast: the map points at the evidence
        insertion=np.clip(0.1 + 2.0 * fractions, 0.0, 0.91),
        random_deletion=0.91 - 0.3 * fractions,
        random_insertion=0.1 + 0.4 * fractions,
        method_agreement={"gradcam vs gradcam++": 0.93, "gradcam vs hirescam": 0.88, "gradcam++ vs hirescam": 0.81},
    )


def pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: the PDF's text is not checked")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())      # lines wrapped on the page: compare words


def test_the_case_report_carries_the_audit_of_the_map_on_screen(canvas, tmp_path: Path) -> None:
    add_overlay(canvas)
    audit = make_audit()
    assert audit.points_at_evidence
    path = export_pdf(canvas, tmp_path / "audited.pdf", sidecar_for(canvas), anonymise=True, audit=audit)
    text = pdf_text(path)
    assert " ".join(audit.verdict().split()) in text
    assert audit.verdict().endswith("the map points at what the model uses.")
    assert (f"deletion curve area {audit.deletion_area:.2f} vs {audit.random_deletion_area:.2f} for a random map"
            in text)
    assert f"insertion area {audit.insertion_area:.2f} vs {audit.random_insertion_area:.2f}" in text
    assert "Grad-CAM vs HiResCAM +0.88" in text and "Grad-CAM vs Grad-CAM++ +0.93" in text
    assert "gradcam" not in text                    # method ids are data; the report names the methods
    assert "not run" not in text
    if shutil.which("pdftoppm") is not None:
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(path),
                        str(OUTPUT_DIR / "case_report_audit")], check=True)


def test_the_sanity_dialog_names_the_audited_methods_as_the_method_menu_does() -> None:
    from cxrviewer.ui.features.sanity import audit_html

    text = audit_html(make_audit(method="gradcam++"))
    assert "(BACTERIAL, Grad-CAM++, layer relu)" in text
    assert "Grad-CAM vs HiResCAM ρ = 0.88" in text and "Grad-CAM++ vs HiResCAM ρ = 0.81" in text
    assert "gradcam" not in text


def test_without_an_audit_the_report_says_it_was_not_run(canvas, tmp_path: Path) -> None:
    add_overlay(canvas)
    text = pdf_text(export_pdf(canvas, tmp_path / "plain.pdf", sidecar_for(canvas), anonymise=True))
    assert "Explanation audit: not run (Tools › Sanity check)" in text
    other_map = make_audit(class_index=2)          # an audit of another class's map is not this map's
    text = pdf_text(export_pdf(canvas, tmp_path / "other.pdf", sidecar_for(canvas), anonymise=True, audit=other_map))
    assert "Explanation audit: not run (Tools › Sanity check)" in text and other_map.verdict()[:30] not in text


def test_shown_audit_takes_only_the_cached_audit_of_the_shown_map() -> None:
    from types import SimpleNamespace

    from cxrviewer.core.inference.protocol import AuditOutcome
    from cxrviewer.core.model.runtime import image_key
    from cxrviewer.core.types import CamResult
    from cxrviewer.ui.features.export_actions import shown_audit

    image = make_xray(gradient(64, 64))
    audit = make_audit()
    asked = []

    def cached_audit(img, class_index, method, layer):
        asked.append((img, class_index, method, layer))
        return AuditOutcome(7, image_key(img), audit) if (class_index, method, layer) == (1, "gradcam", "relu") else None

    cam = CamResult(1, image_key(image), "pneumonia3", 1, "gradcam", "relu", np.zeros((2, 2), np.float32))
    session = SimpleNamespace(shown_cam=lambda: cam, image=image, current_key=lambda: image_key(image),
                              engine=SimpleNamespace(cached_audit=cached_audit))
    assert shown_audit(session) is audit and asked == [(image, 1, "gradcam", "relu")]
    session.shown_cam = lambda: dataclasses.replace(cam, layer="conv1_relu")
    assert shown_audit(session) is None
    session.shown_cam = lambda: None
    assert shown_audit(session) is None
