"""Tools ▸ Practice Packet in the real MainWindow with a tiny random-weight model.

A whole 5-case packet: read first enforced, neutral file names, the status bar's progress and
time, a restart in the middle (the state is saved, a new window resumes at the next case), the
score sheet against the known labels and the model's call, CSV and PDF exports; a packet that
reveals the AI only at the end; pause and the time limit. The score sheet's picture goes to
tests/gui/_output/practice_score_sheet.png.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from cxrviewer.teaching.packet_history import PAUSED
from cxrviewer.teaching.practice import (
    LAST_FILENAME,
    REVEAL_END,
    STATE_FILENAME,
    PacketSpec,
    is_abnormal_label,
)
from cxrviewer.teaching.reads import call_for_label
from cxrviewer.ui.shell.settings import ViewerSettings
from tests.model_factory import EXPORT_SAFE_BACKBONE, TINY_LABELS, make_model_folder

from .helpers import LOAD_TIMEOUT_MS
from .image_compare import OUTPUT_DIR, qimage_to_rgb, write_png

MODEL_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 60_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("practice_models")
    make_model_folder(root, "tiny", operating_threshold=0.5, backbone=EXPORT_SAFE_BACKBONE)
    return root


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """A Kermany-style folder: 4 NORMAL, 2 bacterial, 2 viral images (distinct pixels)."""
    root = tmp_path / "chest_xray" / "test"
    rng = np.random.default_rng(0)
    names = ([("NORMAL", f"IM-{i:04d}-0001.png") for i in range(4)]
             + [("PNEUMONIA", f"person{i}_bacteria_{i + 10}.png") for i in range(2)]
             + [("PNEUMONIA", f"person{i + 5}_virus_{i + 20}.png") for i in range(2)])
    for folder, name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (96, 80), dtype=np.uint8)
        Image.fromarray(pixels).save(root / folder / name)
    return root


@pytest.fixture
def open_window(qtbot, monkeypatch, make_window, settings_file, models_root):
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))

    def make():
        settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
        settings.qsettings.setValue("ai/model", "tiny")
        window = make_window(settings, size=(1300, 850))
        qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                        timeout=MODEL_TIMEOUT_MS)
        assert window.ai.current_model() is not None, window.ai.last_error()
        return window

    return make


def data_dir() -> Path:
    return Path(os.environ["CXRVIEWER_DATA_DIR"])


def wait_for_case(qtbot, window, number: int) -> None:
    practice = window.practice
    qtbot.waitUntil(lambda: window.current_image() is not None
                    and practice.staged_path(number) is not None
                    and window.current_image().path.resolve() == practice.staged_path(number).resolve(),
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.ai.current_prediction() is not None, timeout=RESULT_TIMEOUT_MS)


def trainee_call(label: str, number: int) -> str:
    """The trainee's planned call: right on odd cases, wrong (normal ↔ abnormal) on even ones."""
    right = number % 2 == 1
    if right:
        return call_for_label(label) if label != "PNEUMONIA" else "bacterial"
    return "viral" if not is_abnormal_label(label) else "normal"


def read_case(qtbot, window, clock: FakeClock, seconds: float) -> str:
    """Call the case on screen (after `seconds` on the packet clock) and record it."""
    practice, panel = window.practice, window.trainee.read_first_panel
    state = practice.state()
    case = state.current_case()
    assert window.ai.results_hidden() and panel.state() == "calling"     # read first: AI hidden
    call = trainee_call(case.label, case.number)
    clock.now += seconds
    panel.set_call(call, 40 + 10 * case.number)
    panel.reveal_button.click()
    qtbot.waitUntil(lambda: practice.state().result_for(case.number) is not None
                    and practice.state().result_for(case.number).model_label is not None,
                    timeout=RESULT_TIMEOUT_MS)
    return call


def test_a_whole_five_case_packet_with_a_restart_in_the_middle(qtbot, open_window, labelled_folder) -> None:
    window = open_window()
    clock = FakeClock()
    practice = window.practice
    practice.clock = clock
    assert window.trainee.read_first_action.isChecked() is False    # the fixture's default: off
    assert practice.action in window.menu("tools").actions()

    spec = PacketSpec(str(labelled_folder), n_cases=5, balanced=True, time_limit_s=35 * 60, seed=11)
    state = practice.start(spec)
    assert state is not None and state.n_cases == 5
    assert sum(not c.abnormal for c in state.cases) == 2            # 5 // 2 normal, 3 abnormal
    assert window.trainee.read_first_action.isChecked()              # read first enforced for the packet
    wait_for_case(qtbot, window, 1)
    shown = window.current_image().path
    assert shown.name == "case-01.png" and "NORMAL" not in str(shown) and "PNEUMONIA" not in str(shown)
    assert window.windowTitle().startswith("Practice case 1 of 5 — ")                # never the file name
    assert not any("case-01" in path for path in window.settings.recent_files())   # copies stay out of Recent
    assert practice.status.isVisible()
    assert practice.status_text() == "Packet 1/5 · 35:00 left"
    assert not practice.status.next_button.isEnabled()              # no call yet

    calls: dict[int, str] = {}
    seconds = {1: 20.0, 2: 35.0, 3: 50.0, 4: 15.0, 5: 25.0}
    for number in (1, 2):
        calls[number] = read_case(qtbot, window, clock, seconds[number])
        assert practice.status.next_button.isEnabled()
        assert not window.ai.results_hidden()                      # revealed after each case
        practice.next_case()
        wait_for_case(qtbot, window, number + 1)
    assert practice.status_text() == f"Packet 3/5 · {35 - 1}:{60 - 55:02d} left"   # 55 s used

    # pause: the clock stops and the image is hidden
    practice.set_paused(True)
    clock.now += 300
    practice._update_status()
    assert practice.status_text().endswith("· paused") and "34:05 left" in practice.status_text()
    assert not window.canvas.isVisible() and not window.trainee.read_first_dock.isEnabled()
    practice.set_paused(False)
    assert window.canvas.isVisible()

    # case 3 is called, then the viewer closes before "Next case"
    calls[3] = read_case(qtbot, window, clock, seconds[3])
    window.close()
    saved = json.loads((data_dir() / STATE_FILENAME).read_text())
    assert len(saved["results"]) == 3 and saved["current"] == 2 and saved["elapsed_s"] == pytest.approx(105.0)
    assert saved["spec"]["seed"] == 11

    # a new window offers the packet and resumes at case 4
    window = open_window()
    practice = window.practice
    clock2 = FakeClock()
    clock2.now = 5000.0
    practice.clock = clock2
    qtbot.waitUntil(lambda: "unfinished practice packet" in window.notice.text(), timeout=5000)
    assert practice.saved_state() is not None and practice.state() is None
    # My Reads › Packets lists it as paused; a double-click carries on with it
    reads = window.trainee.my_reads.open()
    [row] = reads.packets()
    assert (row.status, row.n_cases, row.n_read) == (PAUSED, 5, 3) and row.status_text == "paused at case 4 of 5"
    assert reads.packets_table.item(0, 4).text() == "paused at case 4 of 5"
    assert reads.packets_table.item(0, 3).text() == "1:45"                # 105 s on the packet clock
    reads.packets_table.cellDoubleClicked.emit(0, 0)
    reads.close()
    resumed = practice.state()
    assert resumed is not None and resumed.current == 3 and len(resumed.results) == 3
    wait_for_case(qtbot, window, 4)
    assert window.current_image().path.name == "case-04.png"
    assert practice.status_text() == "Packet 4/5 · 33:15 left"         # 105 s used before the restart
    assert window.trainee.read_first_action.isChecked()
    for number in (4, 5):
        calls[number] = read_case(qtbot, window, clock2, seconds[number])
        if number == 4:
            practice.next_case()
            wait_for_case(qtbot, window, 5)
    assert practice.status.next_button.text() == "Score sheet ▶"
    with qtbot.waitSignal(practice.finished, timeout=5000) as done:
        practice.next_case()
    sheet = done.args[0]

    # the score sheet against the known labels
    state = practice.state()
    assert state.finished and state.finish_reason == "complete"
    assert not (data_dir() / STATE_FILENAME).exists() and (data_dir() / LAST_FILENAME).is_file()
    assert not window.trainee.read_first_action.isChecked()             # restored to the user's setting
    assert not practice.status.isVisible()
    expected_correct = [n for n in range(1, 6) if n % 2 == 1]
    assert sheet.n_read == 5 and sheet.n_correct == len(expected_correct)
    abnormal = {c.number: c.abnormal for c in state.cases}
    tp = sum(1 for n in range(1, 6) if abnormal[n] and n % 2 == 1)
    tn = sum(1 for n in range(1, 6) if not abnormal[n] and n % 2 == 1)
    assert sheet.true_positive == tp and sheet.true_negative == tn
    assert sheet.sensitivity == pytest.approx(tp / sum(abnormal.values()))
    assert sheet.specificity == pytest.approx(tn / (5 - sum(abnormal.values())))
    assert [r.seconds for r in sorted(state.results, key=lambda r: r.number)] == [seconds[n] for n in range(1, 6)]
    assert sheet.elapsed_s == pytest.approx(sum(seconds.values()))
    for result in state.results:
        assert result.call == calls[result.number] and result.model_label in TINY_LABELS
        assert result.model_name == "tiny"
    assert sheet.n_with_model == 5
    model_right_you_wrong = [s.case.number for s in sheet.cases if s.model_correct and not s.correct]
    assert [s.case.number for s in sheet.model_right_you_wrong] == model_right_you_wrong
    dialog = practice.score_dialog
    assert dialog is not None and dialog.isVisible()
    assert "Accuracy (normal / abnormal)" in dialog.summary_text()
    assert f"({sheet.n_correct}/5)" in dialog.summary_text()
    assert dialog.table.rowCount() == 5
    assert dialog.table.item(0, 7).text() == Path(state.cases[0].path).name   # the real names once scored

    # My Reads › Packets: the finished packet, its score; a double-click opens its score sheet again
    reads = window.trainee.my_reads.open()
    [row] = reads.packets()
    assert row.status == "finished" and row.packet_id == state.packet_id
    assert row.score_text == f"{sheet.n_correct}/5 ({round(sheet.accuracy * 100)} %)"
    assert reads.packets_table.item(0, 2).text() == row.score_text and reads.packets_table.item(0, 1).text() == "5"
    reads.tabs.setCurrentIndex(1)
    reads.resize(820, 300)
    qtbot.waitExposed(reads)
    write_png(OUTPUT_DIR / "my_reads_packets.png", qimage_to_rgb(reads.grab().toImage()))
    reads.packets_table.cellDoubleClicked.emit(0, 0)
    again = practice.score_dialog
    assert again is not dialog and again.isVisible() and again.table.rowCount() == 5
    assert f"({sheet.n_correct}/5)" in again.summary_text()
    again.close()
    reads.close()

    # the picture, the exports, and a click that opens a case
    dialog.resize(860, 780)
    qtbot.waitExposed(dialog)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    write_png(OUTPUT_DIR / "practice_score_sheet.png", qimage_to_rgb(dialog.grab().toImage()))
    csv_path = dialog.export_csv(data_dir() / "sheet.csv")
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(r["case"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [r["your_call"] for r in rows] == [calls[n] for n in range(1, 6)]
    pdf_path = dialog.export_pdf(data_dir() / "sheet.pdf")
    assert pdf_path.read_bytes().startswith(b"%PDF")
    lists = dialog.model_right_list if sheet.model_right_you_wrong else dialog.you_right_list
    item = lists.item(0)
    target = item.data(Qt.ItemDataRole.UserRole)
    if target:
        with qtbot.waitSignal(window.image_changed, timeout=LOAD_TIMEOUT_MS):
            lists.itemClicked.emit(item)
        assert str(window.current_image().path.resolve()) == target


def test_reveal_at_the_end_keeps_the_ai_hidden_and_moves_on_by_itself(qtbot, open_window, labelled_folder) -> None:
    window = open_window()
    practice = window.practice
    clock = FakeClock()
    practice.clock = clock
    spec = PacketSpec(str(labelled_folder), n_cases=3, balanced=False, time_limit_s=None, reveal=REVEAL_END,
                      seed=5)
    practice.start(spec)
    panel = window.trainee.read_first_panel
    for number in (1, 2):
        wait_for_case(qtbot, window, number)
        assert practice.status_text().endswith("(untimed)")
        clock.now += 10
        panel.set_call("normal", 60)
        panel.reveal_button.click()
        assert window.ai.results_hidden() and panel.result_frame.isHidden()   # still hidden after the call
        qtbot.waitUntil(lambda n=number: practice.state().current + 1 > n or practice.state().finished,
                        timeout=RESULT_TIMEOUT_MS)
    wait_for_case(qtbot, window, 3)
    clock.now += 10
    panel.set_call("viral", 90)
    with qtbot.waitSignal(practice.finished, timeout=RESULT_TIMEOUT_MS) as done:
        panel.reveal_button.click()
    sheet = done.args[0]
    assert sheet.n_read == 3 and sheet.n_with_model == 3
    assert practice.score_dialog is not None


def test_the_time_limit_ends_the_packet_and_scores_what_was_read(qtbot, open_window, labelled_folder) -> None:
    window = open_window()
    practice = window.practice
    clock = FakeClock()
    practice.clock = clock
    practice.start(PacketSpec(str(labelled_folder), n_cases=4, time_limit_s=60, seed=2))
    wait_for_case(qtbot, window, 1)
    read_case(qtbot, window, clock, 30)
    clock.now += 31
    with qtbot.waitSignal(practice.finished, timeout=5000) as done:
        pass
    sheet = done.args[0]
    assert sheet.finish_reason == "time" and sheet.n_read == 1 and sheet.n_cases == 4
    assert "time ran out" in practice.score_dialog.summary_text()


def test_the_setup_dialogs_source_field_shows_its_whole_hint(qtbot) -> None:
    """The walk showed "A folder of class fo…": the field was squeezed by its two buttons."""
    from cxrviewer.ui.features.practice import PacketSetupDialog

    dialog = PacketSetupDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    edit = dialog.source_edit
    assert edit.width() > edit.fontMetrics().horizontalAdvance(edit.placeholderText())


def test_the_setup_dialog_counts_the_pool_and_builds_the_spec(qtbot, labelled_folder, tmp_path) -> None:
    from cxrviewer.ui.features.practice import PacketSetupDialog

    dialog = PacketSetupDialog()
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.set_source(labelled_folder)
    assert dialog.pool_size() == 8 and "4 normal, 4 abnormal" in dialog.pool_label.text() and ok.isEnabled()
    assert dialog.cases_spin.value() == 30 and dialog.minutes_spin.value() == 35
    dialog.timed_check.setChecked(False)
    dialog.reveal_combo.setCurrentIndex(1)
    dialog.seed_spin.setValue(42)
    spec = dialog.spec()
    assert spec.time_limit_s is None and spec.reveal == REVEAL_END and spec.seed == 42 and spec.balanced
    assert dialog.spec().seed == 42                                   # a chosen seed is kept
    dialog.seed_spin.setValue(0)
    assert dialog.spec().seed > 0                                     # "random" draws one (recorded)
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,label\n" + "\n".join(f"{p},NORMAL" for p in sorted(labelled_folder.rglob("IM-*"))))
    dialog.set_source(manifest)
    assert dialog.pool_size() == 4 and "4 normal, 0 abnormal" in dialog.pool_label.text()
    dialog.set_source(tmp_path / "nowhere")
    assert dialog.pool_size() == 0 and not ok.isEnabled() and "not a folder" in dialog.pool_label.text()
