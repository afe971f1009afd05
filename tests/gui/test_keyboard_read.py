"""A whole Read First read with the keyboard only: F2, a letter for the call, a digit for the
confidence, Enter to record and reveal — the window's one-letter shortcuts (V flip, O heat map, 1 actual
size) do not fire while the read has the focus."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cxrviewer.core.model.runtime import image_key
from cxrviewer.ui.docks.read_first_panel import call_keys
from cxrviewer.ui.shell.settings import ViewerSettings
from tests.model_factory import build_tiny_classifier, make_model_folder

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot
from .synthetic import gradient, write_png

TIMEOUT_MS = 180_000


def press(key, text: str = "") -> None:
    widget = QApplication.focusWidget()
    assert widget is not None, "nothing has the keyboard focus"
    QTest.keyClick(widget, key) if not text else QTest.keyClicks(widget, text)


def test_call_keys_are_unique_first_letters():
    assert call_keys(("normal", "bacterial", "viral", "other")) == {
        "normal": "N", "bacterial": "B", "viral": "V", "other": "O"}
    keys = call_keys(("covid-19", "normal", "viral", "other"))
    assert keys["covid-19"] == "C" and len(set(keys.values())) == 4
    assert len(set(call_keys(("normal", "nodule", "other")).values())) == 3


def test_a_whole_read_with_the_keyboard_only(qtbot, monkeypatch, make_window, tmp_path):
    root = tmp_path / "models"
    make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(root))
    settings = ViewerSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.qsettings.setValue("ai/read_first", True)
    window = make_window(settings, size=(1400, 900))
    window.activateWindow()
    qtbot.waitUntil(lambda: window.ai.current_model() is not None, timeout=TIMEOUT_MS)
    path = tmp_path / "chest.png"
    write_png(path, gradient(160, 140, high=255).astype(np.uint8))
    open_and_wait(qtbot, window, [path])
    qtbot.waitUntil(lambda: window.ai.current_prediction() is not None, timeout=TIMEOUT_MS)
    panel = window.trainee.read_first_panel
    assert panel.state() == "calling" and window.ai.results_hidden()
    flips_before = window.canvas.orientation()
    overlay_toggle = window.ai.toggle_action.isChecked()

    QTest.keyClick(window, Qt.Key.Key_F2)                      # focus the read
    assert panel.isAncestorOf(QApplication.focusWidget())
    assert "[V]" in panel.call_buttons["viral"].text()        # the key is shown on the button
    press(None, "v")                                            # Viral (not Flip V)
    assert panel.selected_call() == "viral"
    assert window.canvas.orientation() == flips_before
    press(None, "7")                                            # confidence 70 % (not 1:1 zoom)
    press(Qt.Key.Key_Up)                                        # +10 → 80 %
    assert panel.confidence_set() and panel.confidence_slider.value() == 80
    press(None, "o")                                            # Other (not the heat-map toggle)
    assert panel.selected_call() == "other" and window.ai.toggle_action.isChecked() == overlay_toggle
    press(None, "b")
    press(Qt.Key.Key_Return)                                    # record and reveal
    qtbot.waitUntil(panel.is_revealed, timeout=TIMEOUT_MS)
    recorded = panel.recorded_call()
    assert recorded.call == "bacterial" and recorded.confidence == 80
    assert not window.ai.results_hidden()
    assert window.ai.current_prediction().image_key == image_key(window.current_image())
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "keyboard_read_revealed.png", qimage_to_rgb(window.grab()))
    # with the read done, the window's own shortcuts work again
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_V)
    assert window.canvas.orientation() != flips_before
