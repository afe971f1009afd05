"""A practice packet in the real window with a tiny random-weight model, where the out-of-distribution checks
flag one of its two cases (a 40×40 image: "it is tiny", flagged before any gate): the flag is recorded with that
case's result (and saved), and the score sheet leaves the case out of the agreement with the model and the model's
accuracy, says so, and still scores the trainee on both cases. The score sheet goes to
tests/gui/_output/practice_score_sheet_flagged.png."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrviewer.teaching.practice import LAST_FILENAME, PacketSpec
from tests.model_factory import EXPORT_SAFE_BACKBONE, make_model_folder

from .image_compare import OUTPUT_DIR, qimage_to_rgb, write_png
from .practice_helpers import shown_case

RESULT_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("practice_flagged_models")
    make_model_folder(root, "tiny", operating_threshold=0.5, backbone=EXPORT_SAFE_BACKBONE)
    return root


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """NORMAL: a 96×80 image (not flagged); PNEUMONIA (bacterial): a 40×40 one (flagged: too small for a film)."""
    root = tmp_path / "chest_xray" / "test"
    rng = np.random.default_rng(1)
    for folder, name, shape in (("NORMAL", "IM-0001-0001.png", (96, 80)),
                                ("PNEUMONIA", "person1_bacteria_1.png", (40, 40))):
        (root / folder).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / folder / name)
    return root


def read_flagged_case(qtbot, window, number: int) -> None:
    """Wait for case `number` on screen and the model's prediction for it."""
    from cxrviewer.core.model.runtime import image_key

    shown_case(qtbot, window, number)
    qtbot.waitUntil(lambda: window.ai.current_prediction() is not None
                    and window.ai.current_prediction().image_key == image_key(window.current_image()),
                    timeout=RESULT_TIMEOUT_MS)


def test_a_flagged_case_is_recorded_and_left_out_of_the_model_figures(qtbot, monkeypatch, make_window, settings_file,
                                                                      models_root, labelled_folder) -> None:
    from PySide6.QtCore import QSettings

    from cxrviewer.ui.shell.settings import ViewerSettings

    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    settings.qsettings.setValue("ai/model", "tiny")
    window = make_window(settings, size=(1300, 850))
    qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                    timeout=RESULT_TIMEOUT_MS)
    assert window.ai.current_model() is not None, window.ai.last_error()
    practice, panel = window.practice, window.trainee.read_first_panel
    state = practice.start(PacketSpec(str(labelled_folder), n_cases=2, balanced=True, time_limit_s=None, seed=3))
    assert state is not None and state.n_cases == 2

    flagged_by_label: dict[str, bool] = {}
    for index in range(2):
        case = practice.state().current_case()
        read_flagged_case(qtbot, window, case.number)
        flagged_by_label[case.label] = window.ai.current_prediction().outside_training_data
        panel.set_call("bacterial" if case.label == "NORMAL" else "normal", 70)    # wrong on both cases
        panel.reveal_button.click()
        qtbot.waitUntil(lambda number=case.number: practice.state().result_for(number) is not None
                        and practice.state().result_for(number).model_label is not None,
                        timeout=RESULT_TIMEOUT_MS)
        assert practice.state().result_for(case.number).outside_training_data is flagged_by_label[case.label]
        if index == 0:
            practice.next_case()
    assert flagged_by_label == {"NORMAL": False, "BACTERIAL": True}, "only the 40×40 image is flagged"
    with qtbot.waitSignal(practice.finished, timeout=5000) as done:
        practice.next_case()
    sheet = done.args[0]

    assert (sheet.n_read, sheet.n_correct) == (2, 0)                   # the trainee is scored on both
    assert (sheet.true_positive, sheet.false_negative) == (0, 1) and sheet.false_positive == 1
    assert (sheet.n_with_model, sheet.n_flagged) == (1, 1)             # only the NORMAL case counts for the model
    flagged_case = next(s for s in sheet.cases if s.case.label != "NORMAL")
    assert flagged_case not in sheet.model_right_you_wrong + sheet.you_right_model_wrong
    dialog = practice.score_dialog
    assert dialog is not None
    assert "(1 flagged case not counted: outside the model" in dialog.summary_text()
    row = [s.case.number for s in sheet.cases].index(flagged_case.case.number)
    assert dialog.table.item(row, 5).text().startswith("withheld (")
    write_png(OUTPUT_DIR / "practice_score_sheet_flagged.png", qimage_to_rgb(dialog.grab().toImage()))

    saved = json.loads((Path(os.environ["CXRVIEWER_DATA_DIR"]) / LAST_FILENAME).read_text())
    assert sorted(r["outside_training_data"] for r in saved["results"]) == [False, True]
    exported = dialog.export_csv(Path(os.environ["CXRVIEWER_DATA_DIR"]) / "sheet.csv")
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert sorted(r["model_withheld"] for r in rows) == ["no", "yes"]
    dialog.close()
