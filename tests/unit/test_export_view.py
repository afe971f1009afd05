"""Export provenance: the sidecar JSON (reproducible, no patient data) and the PDF case report."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cxrviewer import __version__
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.types import Prediction, Window
from cxrviewer.teaching.export_view import (
    CaseReport,
    ExportedView,
    ExportError,
    OverlayState,
    build_sidecar,
    export_caption,
    find_identifiers,
    sidecar_json,
    sidecar_path,
    write_case_report,
    write_sidecar,
)
from cxrviewer.teaching.reads import ReadCall, compare_read
from tests.model_factory import make_xray

METADATA = {
    "PatientName": "Doe^Jane", "PatientID": "PID-12345", "PatientBirthDate": "1970-01-02",
    "AccessionNumber": "ACC-777", "InstitutionName": "Teaching Hospital", "PatientSex": "F",
    "StudyDate": "2024-03-15", "Modality": "CR",
}
CARD = ModelCard(name="pneumonia3", labels=("NORMAL", "BACTERIAL", "VIRAL"), input_size=192,
                 backbone="densenet121", cam_layer="relu", weights_file="model.keras", weights_sha256="ab" * 32,
                 temperature=1.5, operating_threshold=0.42)
PREDICTION = Prediction(7, "k#0", "pneumonia3", CARD.labels, (0.2, 0.7, 0.1))
OVERLAY = OverlayState("gradcam", "relu", 1, "BACTERIAL", threshold=0.2, opacity=0.45, colormap="jet")


@pytest.fixture
def image():
    return dataclasses.replace(make_xray(96, seed=2), path=Path("/data/Doe_Jane/PID-12345.dcm"), metadata=METADATA,
                               display_name="Doe_Jane PID-12345")


@pytest.fixture
def sidecar(image):
    view = ExportedView(Window(600.0, 1400.0), zoom=1.5, user_invert=True, rotation_degrees=90, flipped=True,
                        visible_rect=(0, 0, 96, 96), viewport_size=(400, 300))
    return build_sidecar(image, view, card=CARD, prediction=PREDICTION, overlay=OVERLAY, created="2026-01-02T03:04:05+00:00")


def test_sidecar_records_everything_needed_to_reproduce_the_picture(sidecar, image) -> None:
    assert sidecar["image"]["sha256"] == image.sha256 and len(image.sha256) == 64
    assert sidecar["view"]["window"] == {"center": 600.0, "width": 1400.0}
    assert sidecar["view"]["rotation_degrees"] == 90 and sidecar["view"]["user_invert"] is True
    assert sidecar["view"]["zoom"] == 1.5
    assert sidecar["model"]["name"] == "pneumonia3" and sidecar["model"]["weights_sha256"] == "ab" * 32
    assert sidecar["model"]["operating_threshold"] == 0.42
    assert sidecar["overlay"]["method"] == "gradcam" and sidecar["overlay"]["layer"] == "relu"
    assert sidecar["overlay"]["class_label"] == "BACTERIAL" and sidecar["overlay"]["threshold"] == 0.2
    assert sidecar["prediction"]["probabilities"] == {"NORMAL": 0.2, "BACTERIAL": 0.7, "VIRAL": 0.1}
    assert sidecar["app"]["version"] == __version__
    json.loads(sidecar_json(sidecar))                    # serialisable


def test_sidecar_never_holds_patient_data(sidecar, image) -> None:
    text = sidecar_json(sidecar, image.metadata)         # would raise if an identifier slipped in
    for value in ("Doe", "Jane", "PID-12345", "1970", "ACC-777", "Teaching Hospital", "/data", "dcm"):
        assert value not in text


def test_identifiers_are_found_as_whole_words() -> None:
    assert set(find_identifiers('{"note": "Doe, Jane"}', METADATA)) == {"Doe", "Jane"}
    assert find_identifiers("born 19700102", METADATA) == ["19700102"]
    assert find_identifiers("acc-777 here", METADATA) == ["ACC-777"]
    assert find_identifiers("hash 9fPID-12345x", METADATA) == []          # inside a longer token: no match
    assert find_identifiers("For teaching and research", METADATA) == []  # institution matched whole only
    assert find_identifiers("anything", {}) == []


def test_a_name_part_that_is_also_a_label_or_colour_map_does_not_block_the_export(sidecar) -> None:
    patient = dict(METADATA, PatientName="Viral^Jet")
    text = sidecar_json(sidecar, patient)                 # "VIRAL" is a label, "jet" the colour map
    assert '"colormap": "jet"' in text and "Viral^Jet" not in text
    with pytest.raises(ExportError, match="patient identifiers"):
        sidecar_json(dict(sidecar, note="seen by Jet"), patient)     # outside those sections it is a leak
    with pytest.raises(ExportError, match="patient identifiers"):
        sidecar_json(dict(sidecar, model=dict(sidecar["model"], name="Viral^Jet")), patient)  # whole name: anywhere


def test_de_identification_placeholders_are_not_identifiers(sidecar) -> None:
    for placeholder in ("Anonymised", "ANONYMOUS", "Test^Patient"):
        sidecar_json(dict(sidecar, export=dict(sidecar["export"], note="anonymised test patient")),
                     dict(METADATA, PatientName=placeholder))
    assert find_identifiers("anonymised", {"PatientName": "Anonymised", "PatientID": "UNKNOWN"}) == []


def test_sidecar_with_identifiers_is_refused(sidecar, image, tmp_path: Path) -> None:
    leaked = dict(sidecar, note="patient Doe^Jane")
    with pytest.raises(ExportError, match="patient identifiers"):
        write_sidecar(tmp_path / "view.json", leaked, image.metadata)
    assert not (tmp_path / "view.json").exists()
    written = write_sidecar(tmp_path / "ok.json", sidecar, image.metadata)
    assert json.loads(written.read_text())["image"]["sha256"] == image.sha256


def test_sidecar_without_model() -> None:
    bare = build_sidecar(make_xray(32), ExportedView(Window(1, 2)))
    assert bare["model"] is None and bare["prediction"] is None and bare["overlay"] is None
    assert sidecar_path("a/b/view.png") == Path("a/b/view.json")


def test_caption_keeps_the_probability_next_to_the_map(sidecar) -> None:
    caption = export_caption(sidecar)
    assert caption.startswith("BACTERIAL 70.0 %, NORMAL 20.0 %, VIRAL 10.0 %")
    assert "Grad-CAM for BACTERIAL (p = 0.70), layer relu, threshold 0.20, per-image scale" in caption
    assert "not for clinical use" in caption
    hidden = dict(sidecar, overlay=dict(sidecar["overlay"], visible=False))
    assert "heat map hidden" in export_caption(hidden)
    before = dict(sidecar, prediction=None, overlay=None, export={"read_first": "before reveal"})
    assert "hidden until the trainee's call" in export_caption(before)


def _report(sidecar, image) -> CaseReport:
    cam = np.zeros((4, 4), np.float32)
    cam[1, 1] = 1
    call = ReadCall("viral", 65, (30.0, 30.0))
    comparison = compare_read(call, "pneumonia3", CARD.labels, PREDICTION.probabilities, cam, image.shape, 0.5,
                              known_label="VIRAL")
    rgb = np.dstack([np.linspace(0, 255, 96 * 96).reshape(96, 96).astype(np.uint8)] * 3)
    return CaseReport(rgb, sidecar, call, comparison, warnings=("Adult patient (45 years): trained on children.",))


def test_case_report_png_twin_draws_a_page(sidecar, image, tmp_path: Path) -> None:
    import cv2

    path = write_case_report(_report(sidecar, image), tmp_path / "report.png", dpi=60)
    page = cv2.imread(str(path))
    assert page.shape[:2] == (round(11.69 * 60), round(8.27 * 60))
    assert (page < 128).any() and (page > 200).mean() > 0.5       # text and image on a mostly white page


def test_case_report_pdf_is_one_page_with_the_call_and_no_identifiers(sidecar, image, tmp_path: Path) -> None:
    path = write_case_report(_report(sidecar, image), tmp_path / "case.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: text of the PDF not checked")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Trainee call: Viral, confidence 65 %" in text
    assert "differs from the model's call (BACTERIAL: BACTERIAL is the most likely class (p = 0.70))" in text
    assert "known label of the folder: VIRAL" in text
    assert "not for clinical use" in text
    assert image.sha256 in text
    assert find_identifiers(text, image.metadata) == []
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in info


def test_case_report_to_an_unwritable_place(sidecar, image, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="report.pdf"):
        write_case_report(_report(sidecar, image), tmp_path / "missing" / "report.pdf")


def test_a_result_shown_anyway_for_a_flagged_image_is_marked_in_the_sidecar_and_caption(image) -> None:
    from cxrviewer.core.types import OodVerdict

    flagged = dataclasses.replace(PREDICTION, ood=OodVerdict(True, 1.3, 0.98, "looks unlike its training images"))
    view = ExportedView(Window(600.0, 1400.0))
    record = build_sidecar(image, view, card=CARD, prediction=flagged, overlay=OVERLAY)
    assert record["prediction"]["out_of_distribution"] == {
        "flagged": True, "score": 1.3, "threshold": 0.98, "reason": "looks unlike its training images"}
    assert "OUTSIDE THE MODEL'S TRAINING DATA, shown anyway: looks unlike" in export_caption(record)
    plain = build_sidecar(image, view, card=CARD, prediction=PREDICTION, overlay=OVERLAY)
    assert plain["prediction"]["out_of_distribution"] is None and "OUTSIDE" not in export_caption(plain)
    json.loads(sidecar_json(record))


def test_the_case_report_of_a_view_shown_anyway_says_so_on_its_heat_map_and_call_lines(image, tmp_path) -> None:
    """The viewer's gate line reads "Shown anyway — Outside what <model> knows: …"; the case report
    of that view said nothing of it (H5 walk)."""
    from cxrviewer.core.types import OodVerdict

    verdict = OodVerdict(True, 1.3, 0.98, "looks unlike its training images")
    flagged = dataclasses.replace(PREDICTION, ood=verdict)
    view = ExportedView(Window(600.0, 1400.0))
    record = build_sidecar(image, view, card=CARD, prediction=flagged, overlay=OVERLAY)
    marker = verdict.shown_anyway_message("pneumonia3")
    assert marker == "Shown anyway — Outside what pneumonia3 knows: looks unlike its training images"
    text = _pdf_text(write_case_report(_report(record, image), tmp_path / "flagged.pdf"))
    lines = [line.strip() for line in text.splitlines()]
    heat_map = next(i for i, line in enumerate(lines) if line.startswith("Heat map: Grad-CAM for BACTERIAL"))
    call = next(i for i, line in enumerate(lines) if line.startswith("differs from the model's call"))
    assert lines[heat_map + 1] == marker and lines[call + 1] == marker
    assert text.count(marker) == 2
    plain = build_sidecar(image, view, card=CARD, prediction=PREDICTION, overlay=OVERLAY)
    assert "Shown anyway" not in _pdf_text(write_case_report(_report(plain, image), tmp_path / "plain.pdf"))


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: text of the PDF not checked")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_the_sidecar_carries_the_same_warnings_as_the_case_report(image) -> None:
    warnings = ["Adult patient (45 years): pneumonia3 was trained on children's radiographs."]
    record = build_sidecar(image, ExportedView(Window(600.0, 1400.0)), card=CARD, prediction=PREDICTION,
                           warnings=warnings)
    assert record["warnings"] == warnings
    assert "warnings" not in build_sidecar(image, ExportedView(Window(600.0, 1400.0)), card=CARD)
    json.loads(sidecar_json(record))


def test_page_path_keeps_a_known_suffix_and_adds_the_default_otherwise() -> None:
    from cxrviewer.teaching.pages import page_path

    assert page_path("case") == Path("case.pdf") and page_path("case.SVG") == Path("case.SVG")
    assert page_path(Path("a/case.png")) == Path("a/case.png") and page_path("case.txt") == Path("case.pdf")
    assert page_path("view.PNG", (".png",)) == Path("view.PNG") and page_path("view.pdf", (".png",)) == Path("view.png")


def test_the_sidecar_records_the_read_first_state_and_warnings_when_given(image) -> None:
    view = ExportedView(Window(1, 2))
    record = build_sidecar(image, view, read_first_state="revealed", warnings=("lateral view",))
    assert record["export"]["read_first"] == "revealed" and record["warnings"] == ["lateral view"]
    assert record["model"] is None and record["prediction"] is None and record["overlay"] is None
    assert "read_first" not in build_sidecar(image, view)["export"]
