"""A flagged image in the real window: no call and no heat map by default, "Show anyway" shows both, marked."""
from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.model.runtime import image_key

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot
from .synthetic import gradient, write_png

pytest.importorskip("tf2onnx", reason="tf2onnx (dev extra) exports the ONNX model")
RESULT_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def flag_everything(tmp_path_factory):
    from tests.model_factory import make_gated_model_folder

    root = tmp_path_factory.mktemp("gated_models")
    make_gated_model_folder(root, "tiny", threshold=-1.0)     # every score is above: everything is flagged
    return root


def test_a_flagged_image_gets_no_call_and_no_map_until_show_anyway(qtbot, monkeypatch, make_window,
                                                                     flag_everything, tmp_path):
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(flag_everything))
    path = tmp_path / "chest.png"
    write_png(path, gradient(256, 224, high=255).astype(np.uint8))
    window = make_window(size=(1400, 900))
    open_and_wait(qtbot, window, [path])
    ai = window.ai
    qtbot.waitUntil(lambda: ai.shown_cam() is not None and ai.shown_cam().image_key == image_key(window.current_image()),
                    timeout=RESULT_TIMEOUT_MS)
    prediction = ai.current_prediction()
    assert prediction.outside_training_data and prediction.ood.score > prediction.ood.threshold
    assert ai.ood_hidden()
    assert not ai.overlay.isVisible()
    assert not any(ai.panel.probabilities_shown().values())          # bars empty: no call shown
    assert "No call and no heat map" in ai.panel.message_label.text()
    assert "Outside what tiny knows: looks unlike its training images" in ai.panel.gate_label.text()
    assert ai.panel.show_anyway_button.isVisible()
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "ood_flagged_view.png", qimage_to_rgb(window.grab()))

    ai.panel.show_anyway_button.click()
    assert not ai.ood_hidden()
    shown = ai.panel.probabilities_shown()
    assert list(shown) == ["NORMAL", "BACTERIAL", "VIRAL"] and sum(shown.values()) == pytest.approx(1.0, abs=1e-3)
    assert ai.overlay.isVisible() or not ai.heatmap_gate().shown_by_default
    assert ai.panel.gate_label.text().startswith("Shown anyway — Outside what tiny knows")
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "ood_shown_anyway.png", qimage_to_rgb(window.grab()))


def test_read_first_still_works_on_a_flagged_image_and_the_reveal_shows_the_warning(
        qtbot, monkeypatch, make_window, flag_everything, tmp_path):
    from PySide6.QtCore import QSettings

    from cxrviewer.ui.shell.settings import ViewerSettings

    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(flag_everything))
    settings = ViewerSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.qsettings.setValue("ai/read_first", True)
    path = tmp_path / "chest.png"
    write_png(path, gradient(256, 224, high=255).astype(np.uint8))
    window = make_window(settings, size=(1400, 900))
    open_and_wait(qtbot, window, [path])
    ai, panel = window.ai, window.trainee.read_first_panel
    qtbot.waitUntil(lambda: ai.current_prediction() is not None, timeout=RESULT_TIMEOUT_MS)
    assert ai.results_hidden() and "Outside what" not in ai.panel.gate_label.text()   # nothing before the call
    panel.set_call("normal", 60)
    panel.reveal_button.click()
    qtbot.waitUntil(panel.is_revealed, timeout=RESULT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: ai.shown_cam() is not None, timeout=RESULT_TIMEOUT_MS)
    assert not ai.results_hidden() and ai.ood_hidden()
    assert "Outside what tiny knows" in ai.panel.message_label.text()
    assert not ai.overlay.isVisible()
