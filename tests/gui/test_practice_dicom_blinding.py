"""A DICOM practice case must not give its label away through its header: during a packet the corner text
shows no descriptive field (only the case's number and the technical lines), the study browser no patient or
series text, the DICOM tags dock shows one line
"Hidden during a practice packet" instead of the tags, and an AI panel message that names the staging folder or
a case's file shows the case's number; all of it comes back when the packet ends. No model is needed. The
window during the packet goes to tests/gui/_output/practice_dicom_blinded.png."""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from cxrviewer.teaching.practice import PacketSpec
from cxrviewer.ui.docks.tag_dock import BLINDED_MESSAGE

from .helpers import LOAD_TIMEOUT_MS
from .image_compare import OUTPUT_DIR, qimage_to_rgb, write_png
from .practice_helpers import browser_text, shown_case
from .synthetic import gradient, write_dicom

LABEL_WORDS = ("NORMAL", "PNEUMONIA", "bacteria", "virus", "person", "chest_xray")
HEADERS = {"NORMAL": "NORMAL chest, no consolidation", "PNEUMONIA": "PNEUMONIA bacterial"}


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """A labelled folder of two DICOMs whose headers name their label (descriptions and comments)."""
    root = tmp_path / "chest_xray" / "test"
    for folder, name in (("NORMAL", "IM-0001-0001.dcm"), ("PNEUMONIA", "person1_bacteria_1.dcm")):
        path = write_dicom(root / folder / name, gradient(120, 100, high=3000))
        dataset = pydicom.dcmread(path)
        dataset.StudyDescription = HEADERS[folder]
        dataset.SeriesDescription = f"{folder} PA"
        dataset.ImageComments = f"teaching file: {folder.lower()}"
        dataset.save_as(path, enforce_file_format=True)
    return root


def tag_values(window) -> list[str]:
    model = window.tag_dock.tags.model
    return [str(model.data(model.index(row, 3))) for row in range(model.rowCount())]


def assert_no_label(where: str, text: str) -> None:
    assert not any(word.lower() in text.lower() for word in LABEL_WORDS), (where, text)


def test_a_dicom_case_shows_no_header_text_and_no_tags_until_the_packet_ends(qtbot, make_window,
                                                                            labelled_folder) -> None:
    window = make_window(size=(1200, 800))
    practice, tags, panel = window.practice, window.tag_dock.tags, window.ai.panel
    state = practice.start(PacketSpec(str(labelled_folder), n_cases=2, balanced=True, time_limit_s=None, seed=4))
    assert state is not None and state.n_cases == 2
    for number in (1, 2):
        shown_case(qtbot, window, number)
        qtbot.wait(100)     # the header's tag listing follows from the loader thread
        corners = window.canvas.corner_text()
        assert corners.top_left[0] == f"Practice case {number} of 2"
        lines = "\n".join(corners.all_lines())
        assert_no_label("corners", lines)
        for kept in ("CR", "PA", "120", "Zoom"):                           # the technical lines stay
            assert kept in lines, lines
        for hidden in ("Doe", "PID-12345", "Teaching Hospital", "ACC-777", "2024"):   # no person, place, date
            assert hidden not in lines, lines
        assert_no_label("title", window.windowTitle())
        browser = browser_text(window)
        assert_no_label("browser", browser)
        assert "Doe" not in browser and "PID-12345" not in browser and "Practice case" in browser
        assert tags.is_blinded() and tags.status.text() == BLINDED_MESSAGE
        assert tags.row_count() == 0 and tag_values(window) == [] and tags.table.isHidden()
        tags.search.setText("PNEUMONIA")                                    # the filter finds nothing either
        assert tags.row_count() == 0 and tags.status.text() == BLINDED_MESSAGE
        tags.search.setText("")

        staged = practice.staged_path(number)
        original = Path(state.cases[number - 1].path)
        panel.set_state(f"No AI result: {staged}: could not decode; {original.name}, {original.parent}")
        for text in (panel.state_text(), panel.message_label.text(), panel.gate_text(), panel.caption()):
            assert "/" not in text and staged.name not in text, text
            assert_no_label("AI panel", text)
        assert f"Practice case {number} of 2" in panel.state_text()
        if number == 1:
            write_png(OUTPUT_DIR / "practice_dicom_blinded.png", qimage_to_rgb(window.grab().toImage()))

        panel_call = window.trainee.read_first_panel
        panel_call.set_call("normal", 60)
        panel_call.reveal_button.click()
        qtbot.waitUntil(lambda n=number: practice.state().result_for(n) is not None, timeout=5_000)
        practice.next_case()
    qtbot.waitUntil(lambda: practice.last_sheet is not None, timeout=5_000)
    if practice.score_dialog is not None:
        practice.score_dialog.close()

    # after the packet: the header's own text and every tag again
    assert not tags.is_blinded() and not tags.table.isHidden()
    own = labelled_folder / "PNEUMONIA" / "person1_bacteria_1.dcm"
    window.open_paths([own])
    qtbot.waitUntil(lambda: window.current_image() is not None and window.current_image().path == own,
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: tags.total_rows() > 0, timeout=LOAD_TIMEOUT_MS)
    assert "PNEUMONIA bacterial" in tag_values(window)
    assert tags.status.text() == f"{tags.total_rows()} tags"
    qtbot.waitUntil(lambda: "PNEUMONIA PA" in browser_text(window), timeout=LOAD_TIMEOUT_MS)   # its series again
    lines = window.canvas.corner_text().all_lines()
    assert "PNEUMONIA bacterial" in lines and "Doe, Jane" in lines
    panel.set_state(f"No AI result: {own}")
    assert str(own) in panel.state_text()                                  # messages name files again
