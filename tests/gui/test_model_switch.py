"""A model switch that fails leaves the previous model working, in the real window."""
from __future__ import annotations

import numpy as np

from cxrviewer.core.model.runtime import image_key
from tests.model_factory import build_tiny_classifier, make_model_folder, tamper_weights

from .helpers import open_and_wait
from .synthetic import gradient, write_png

TIMEOUT_MS = 180_000


def test_a_failed_switch_keeps_the_previous_model_and_says_why(qtbot, monkeypatch, make_window, tmp_path):
    root = tmp_path / "models"
    make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    tamper_weights(make_model_folder(root, "broken", model=build_tiny_classifier(3, 32, seed=1)))
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(root))
    path = tmp_path / "chest.png"
    write_png(path, gradient(128, 112, high=255).astype(np.uint8))
    window = make_window(size=(1400, 900))
    ai = window.ai
    ai.switch_model("tiny")
    open_and_wait(qtbot, window, [path])
    qtbot.waitUntil(lambda: ai.shown_cam() is not None and ai.shown_cam().model_name == "tiny", timeout=TIMEOUT_MS)

    with qtbot.waitSignal(ai.failed, timeout=TIMEOUT_MS) as failed:
        ai.switch_model("broken")
    assert "checksum" in failed.args[0]
    qtbot.waitUntil(lambda: ai.current_model() is not None, timeout=TIMEOUT_MS)
    assert ai.current_model().name == "tiny"
    assert "Could not switch model" in ai.panel.state_text() and "Still using tiny" in ai.panel.state_text()
    qtbot.waitUntil(lambda: ai.shown_cam() is not None and ai.shown_cam().image_key == image_key(window.current_image()),
                    timeout=TIMEOUT_MS)
    assert ai.shown_cam().model_name == "tiny"
    assert ai.device_label.text() == "AI ready · tiny · CPU"
