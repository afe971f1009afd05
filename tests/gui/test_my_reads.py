"""The "My reads" dialog: table, agreement summary, calibration plot, deleting reads."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from cxrviewer.teaching.reads import ReadRecord, ReadStore
from cxrviewer.ui.dialogs.my_reads import COLUMNS, MyReadsDialog, calibration_image, summary_lines

from .image_compare import OUTPUT_DIR, assert_matches_golden, qimage_to_rgb, write_png

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")


def rec(n: int, call: str, confidence: int, top: int, known: str | None, hot: bool | None = None) -> ReadRecord:
    probabilities = [0.1, 0.1, 0.1]
    probabilities[top] = 0.8
    return ReadRecord(
        image_sha256=hashlib.sha256(str(n).encode()).hexdigest(), call=call, confidence=confidence,
        model_name="pneumonia3", labels=LABELS, probabilities=tuple(probabilities), known_label=known,
        point=None if hot is None else (10.0, 20.0), point_in_hot_region=hot,
        created=f"2026-01-{n + 1:02d}T10:{n:02d}:00+00:00",
    )


RECORDS = [
    rec(0, "viral", 90, 2, "VIRAL", hot=True),
    rec(1, "normal", 80, 0, "NORMAL"),
    rec(2, "bacterial", 85, 2, "VIRAL", hot=False),
    rec(3, "viral", 30, 2, "BACTERIAL"),          # the model is wrong here
    rec(4, "normal", 20, 0, "NORMAL"),
    rec(5, "other", 50, 0, None),
    rec(6, "bacterial", 65, 1, "BACTERIAL"),
    rec(7, "viral", 60, 2, "VIRAL"),
]


@pytest.fixture
def store(tmp_path: Path):
    with ReadStore(tmp_path / "reads.sqlite3") as s:
        for r in RECORDS:
            s.add(r)
        yield s


def test_summary_lines() -> None:
    lines = summary_lines(RECORDS)
    assert lines[0] == "8 reads"
    assert lines[1] == "Agreement with the model: 75 % (6 of 8)"
    assert lines[2] == "Your accuracy against known labels: 71 % (5 of 7); the model on the same images: 86 % (6 of 7)"
    assert lines[3].startswith("Brier score")
    assert "need known labels" in summary_lines([rec(9, "viral", 50, 2, None)])[-1]


def test_summary_lines_leave_flagged_reads_out_of_both_figures_about_the_model() -> None:
    flagged = [dataclasses.replace(rec(8, "viral", 70, 0, "VIRAL"), outside_training_data=True),   # model wrong
               dataclasses.replace(rec(9, "normal", 70, 0, None), outside_training_data=True)]    # no label
    lines = summary_lines(RECORDS + flagged)
    assert lines[1] == "Agreement with the model: 75 % (6 of 8; 2 flagged reads not counted)"
    assert lines[2] == ("Your accuracy against known labels: 75 % (6 of 8); "
                        "the model on the same images: 86 % (6 of 7; 1 flagged read not counted)")


def test_my_reads_leaves_flagged_reads_out_of_agreement_with_the_model(qtbot, store: ReadStore) -> None:
    """An adult flagged by the OOD gate (H5 walk): listed, but not in the agreement with the model."""
    flagged = dataclasses.replace(rec(8, "viral", 70, 0, "VIRAL"), outside_training_data=True)
    store.add(flagged)
    dialog = MyReadsDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == len(RECORDS) + 1
    newest = dialog.table.item(0, 5)                                     # the flagged read, newest first
    assert newest.text() == "⚠" and "not counted in the agreement" in newest.toolTip()
    assert dialog.table.item(1, 5).text() == "✔"
    text = dialog.summary_label.text()
    assert "9 reads" in text
    assert "Agreement with the model: 75 % (6 of 8; 1 flagged read not counted)" in text
    assert "Your accuracy against known labels: 75 % (6 of 8)" in text   # the trainee's accuracy counts it
    # the model was wrong on the flagged image, but its call was withheld there: 6 of 7, not 6 of 8
    assert "the model on the same images: 86 % (6 of 7; 1 flagged read not counted)" in text


def test_dialog_shows_the_store_newest_first(qtbot, store: ReadStore) -> None:
    dialog = MyReadsDialog(store)
    qtbot.addWidget(dialog)
    table = dialog.table
    assert table.rowCount() == len(RECORDS) and table.columnCount() == len(COLUMNS)
    first = [table.item(0, c).text() for c in range(len(COLUMNS))]
    assert first[0] == "2026-01-08 10:07" and first[2] == "Viral" and first[3] == "60 %"
    assert first[4] == "VIRAL 80 %" and first[5] == "✔" and first[6] == "VIRAL" and first[7] == "✔"
    oldest = [table.item(len(RECORDS) - 1, c).text() for c in range(len(COLUMNS))]
    assert oldest[8] == "inside"
    assert table.item(0, 1).text() == RECORDS[-1].image_sha256[:8]
    assert "8 reads" in dialog.summary_label.text()
    assert [(b.low, b.count) for b in dialog.calibration_bins] == [(20, 2), (60, 2), (80, 3)]
    assert not dialog.calibration_label.pixmap().isNull()


def test_delete_all_asks_first(qtbot, store: ReadStore, monkeypatch: pytest.MonkeyPatch) -> None:
    dialog = MyReadsDialog(store)
    qtbot.addWidget(dialog)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    dialog.clear_button.click()
    assert dialog.table.rowCount() == len(RECORDS)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.clear_button.click()
    assert dialog.table.rowCount() == 0 and store.records() == []
    assert dialog.summary_label.text().startswith("0 reads")


def test_calibration_plot_draws_the_points() -> None:
    from cxrviewer.teaching.reads import calibration_curve

    empty = qimage_to_rgb(calibration_image(()))
    full = qimage_to_rgb(calibration_image(calibration_curve(RECORDS, 5)))
    assert empty.shape == full.shape == (300, 340, 3)
    red = (full[..., 0] > 150) & (full[..., 1] < 90) & (full[..., 2] < 90)      # the curve's colour
    assert red.sum() > 100 and not ((empty[..., 0] > 150) & (empty[..., 1] < 90) & (empty[..., 2] < 90)).any()


def test_golden_my_reads_dialog(qtbot) -> None:
    dialog = MyReadsDialog(records=RECORDS)
    qtbot.addWidget(dialog)
    assert not dialog.clear_button.isEnabled()              # a record list without a store cannot be deleted
    dialog.setFixedSize(1100, 480)
    dialog.show()
    qtbot.waitExposed(dialog)
    shot = qimage_to_rgb(dialog.grab())
    write_png(OUTPUT_DIR / "my_reads_dialog.png", shot)
    assert_matches_golden("my_reads_dialog", shot, mean_tol=3.0, max_fraction=0.01)
