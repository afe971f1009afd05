"""A practice case on screen is "Practice case N of M": the window title, the study browser, the status bar
and the corner text never show the staging folder, the staged copy's name or the original file's name
(whose folder and Kermany name give the label away) — also when a case could not be copied and is opened
from where it lies. After the packet, files have their own names again. No model: the AI plays no part. The window with case 1
goes to tests/gui/_output/practice_case_named.png."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrviewer.teaching import practice as practice_module
from cxrviewer.teaching.practice import PacketSpec

from .helpers import LOAD_TIMEOUT_MS
from .image_compare import OUTPUT_DIR, qimage_to_rgb, write_png
from .practice_helpers import browser_text, shown_case

LABEL_WORDS = ("NORMAL", "PNEUMONIA", "bacteria", "virus", "person", "IM-", "chest_xray")


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """A Kermany-style folder: 2 NORMAL, 1 bacterial, 1 viral image."""
    root = tmp_path / "chest_xray" / "test"
    rng = np.random.default_rng(3)
    names = [("NORMAL", "IM-0001-0001.png"), ("NORMAL", "IM-0002-0001.png"),
             ("PNEUMONIA", "person1_bacteria_11.png"), ("PNEUMONIA", "person5_virus_20.png")]
    for folder, name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (96, 80), dtype=np.uint8)).save(root / folder / name)
    return root


def screen_texts(window) -> dict[str, str]:
    """What the trainee can read about the image: title, status bar, browser rows and tooltips, corners."""
    return {"title": window.windowTitle(), "status": window.statusBar().currentMessage(),
            "browser": browser_text(window), "corners": "\n".join(window.canvas.corner_text().all_lines()),
            "image": window.current_image().display_name}


def assert_blinded(texts: dict[str, str], window, number: int, n_cases: int) -> None:
    staged = window.practice.staged_path(number)
    for where, text in texts.items():
        assert "/" not in text and "\\" not in text, (where, text)                  # no path at all
        assert staged.name not in text and staged.parent.name not in text, (where, text)
        assert not any(word.lower() in text.lower() for word in LABEL_WORDS), (where, text)
    name = f"Practice case {number} of {n_cases}"
    assert texts["title"].startswith(f"{name} — ") and texts["image"] == name
    assert texts["corners"].splitlines()[0] == name
    assert name in texts["browser"] and "Practice packet" in texts["browser"]


def record_and_advance(qtbot, window, number: int) -> None:
    panel, practice = window.trainee.read_first_panel, window.practice
    panel.set_call("normal", 60)
    panel.reveal_button.click()
    qtbot.waitUntil(lambda: practice.state().result_for(number) is not None, timeout=5_000)
    practice.next_case()


@pytest.mark.parametrize("copies", ["staged", "copy fails"])
def test_a_practice_case_is_named_by_its_number_never_by_a_path(qtbot, make_window, labelled_folder,
                                                                 monkeypatch, copies: str) -> None:
    if copies == "copy fails":      # each case opens from where it lies: its folder names its label
        def refuse(*_args, **_kwargs):
            raise OSError("read-only staging folder")
        monkeypatch.setattr(practice_module.shutil, "copyfile", refuse)
    window = make_window(size=(1100, 760))
    practice = window.practice
    state = practice.start(PacketSpec(str(labelled_folder), n_cases=3, balanced=False, time_limit_s=None, seed=5))
    assert state is not None and state.n_cases == 3
    if copies == "copy fails":
        assert "NORMAL" in str(practice.staged_path(1)) or "PNEUMONIA" in str(practice.staged_path(1))
    for number in (1, 2):
        shown_case(qtbot, window, number)
        assert_blinded(screen_texts(window), window, number, 3)
        if number == 1 and copies == "staged":
            write_png(OUTPUT_DIR / "practice_case_named.png", qimage_to_rgb(window.grab().toImage()))
        record_and_advance(qtbot, window, number)
    shown_case(qtbot, window, 3)
    assert_blinded(screen_texts(window), window, 3, 3)
    record_and_advance(qtbot, window, 3)                  # the last: the score sheet, the packet is over
    qtbot.waitUntil(lambda: practice.last_sheet is not None, timeout=5_000)
    if practice.score_dialog is not None:
        practice.score_dialog.close()

    own = labelled_folder / "NORMAL" / "IM-0001-0001.png"   # outside a packet a file is called by its name
    window.open_paths([own])
    qtbot.waitUntil(lambda: window.current_image() is not None and window.current_image().path == own,
                    timeout=LOAD_TIMEOUT_MS)
    assert window.windowTitle().startswith("IM-0001-0001.png") and window.canvas.corner_text().top_left == ()
    assert "IM-0001-0001.png" in screen_texts(window)["browser"] and "NORMAL" in screen_texts(window)["browser"]
