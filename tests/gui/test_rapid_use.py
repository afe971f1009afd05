"""Rapid use: 200 image switches as fast as events allow while predictions run, with the
model and overlay settings changed mid-flight. The final overlay must belong to the final
image (never one image's map on another) and nothing may be logged at WARNING or above."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from cxrviewer.core.model.runtime import image_key
from cxrviewer.ui.docks.overlay_controls import CamTarget
from tests.model_factory import build_tiny_classifier, make_model_folder

from .helpers import open_and_wait
from .synthetic import gradient, write_png

MODEL_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 120_000
SWITCHES = 200


@pytest.fixture(scope="module")
def rapid_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rapid_models")
    make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    make_model_folder(root, "tiny_b", model=build_tiny_classifier(3, 32, seed=7))
    return root


@pytest.fixture(scope="module")
def rapid_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rapid_images")
    for number in range(12):
        pixels = np.roll(gradient(96 + number, 110, high=255).astype(np.uint8), number * 9, axis=1)
        write_png(folder / f"case_{number:02d}.png", pixels)
    return folder


def _overlay_is_for_shown_image(window) -> bool:
    image, cam = window.current_image(), window.ai.shown_cam()
    return (image is not None and cam is not None and cam.image_key == image_key(image)
            and window.ai.overlay.image_key() == image_key(image))


def test_two_hundred_switches_with_mid_flight_changes_end_on_the_right_overlay(
        qtbot, monkeypatch, make_window, rapid_models, rapid_folder, caplog) -> None:
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(rapid_models))
    window = make_window(size=(1200, 800))
    ai = window.ai
    qtbot.waitUntil(lambda: ai.current_model() is not None or bool(ai.last_error()), timeout=MODEL_TIMEOUT_MS)
    assert ai.current_model() is not None, ai.last_error()
    open_and_wait(qtbot, window, [rapid_folder])
    qtbot.waitUntil(lambda: _overlay_is_for_shown_image(window), timeout=RESULT_TIMEOUT_MS)

    caplog.set_level(logging.WARNING)
    controls = ai.controls
    for step in range(SWITCHES):
        window.next_image() if step % 7 else window.previous_image()
        QApplication.processEvents()
        if step % 25 == 3:
            controls.set_opacity((step % 10) / 10)
            controls.set_threshold((step % 5) / 10)
        if step % 40 == 11:
            controls.set_target(CamTarget(step % 3, ("gradcam", "gradcam++", "hirescam")[step % 3]))
        if step == 120:
            ai.switch_model("tiny_b")
    qtbot.waitUntil(lambda: ai.current_model() is not None and ai.current_model().name == "tiny_b",
                    timeout=MODEL_TIMEOUT_MS)
    final_path = window.current_path()
    qtbot.waitUntil(lambda: window.current_image() is not None
                    and window.current_image().path == final_path, timeout=RESULT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: _overlay_is_for_shown_image(window), timeout=RESULT_TIMEOUT_MS)
    qtbot.wait(300)   # late results of superseded requests must not replace it
    assert _overlay_is_for_shown_image(window)
    assert ai.shown_cam().model_name == "tiny_b"
    prediction = ai.current_prediction()
    assert prediction is not None and prediction.image_key == image_key(window.current_image())
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("cxrviewer")]
    assert not problems, [f"{r.name}: {r.getMessage()}" for r in problems]
