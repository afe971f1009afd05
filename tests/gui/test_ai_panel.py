"""The AI second reader in the real MainWindow with tiny random-weight models.

Covers the contract of DESIGN.md "Overlays are cheap" at the controller level (what costs a
model call and what does not), stale-result rejection, model failure and retry, switching
models, and that the window appears before TensorFlow is imported.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import CamResult, Prediction
from cxrviewer.ui.docks.ai_panel import AiPanel, pneumonia_probability
from tests.model_factory import build_tiny_classifier, make_model_folder, tamper_weights

from .helpers import open_and_wait, wait_for_image
from .synthetic import gradient, write_png

MODEL_TIMEOUT_MS = 180_000    # the first load imports TensorFlow on a busy 2-core machine
RESULT_TIMEOUT_MS = 60_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    """"tiny" (a pneumonia model: NORMAL/BACTERIAL/VIRAL) and "other" (two labels, no pneumonia)."""
    root = tmp_path_factory.mktemp("ai_models")
    make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    make_model_folder(root, "other", labels=("CLEAR", "OPAQUE"), model=build_tiny_classifier(2, 32, seed=5))
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ai_images")
    for number, (rows, cols) in enumerate([(120, 100), (90, 140), (128, 128)], 1):
        pixels = gradient(rows, cols, high=255).astype(np.uint8)
        write_png(folder / f"chest_{number}.png", np.roll(pixels, number * 17, axis=1))
    return folder


def wait_for_model(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                    timeout=MODEL_TIMEOUT_MS)
    assert window.ai.current_model() is not None, window.ai.last_error()


def overlay_matches_shown_image(window) -> bool:
    image = window.current_image()
    cam = window.ai.shown_cam()
    return (image is not None and cam is not None and cam.image_key == image_key(image)
            and window.ai.overlay.image_key() == image_key(image))


def wait_for_overlay(qtbot, window) -> CamResult:
    qtbot.waitUntil(lambda: overlay_matches_shown_image(window), timeout=RESULT_TIMEOUT_MS)
    return window.ai.shown_cam()


@pytest.fixture
def ai_window(qtbot, monkeypatch, make_window, models_root):
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))
    window = make_window(size=(1400, 900))
    wait_for_model(qtbot, window)
    return window


@pytest.fixture
def requests(monkeypatch, ai_window) -> list[tuple]:
    """Every call the controller makes to InferenceService.request."""
    calls: list[tuple] = []
    service = ai_window.ai.service
    original = service.request

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "request", spy)
    return calls


@pytest.fixture
def shown(qtbot, ai_window, image_folder) -> CamResult:
    open_and_wait(qtbot, ai_window, [image_folder / "chest_1.png"])
    return wait_for_overlay(qtbot, ai_window)


# ---------------------------------------------------------------------------- the panel alone
def test_panel_shows_bars_top_class_and_the_pneumonia_sum(qtbot) -> None:
    panel = AiPanel()
    qtbot.addWidget(panel)
    prediction = Prediction(1, "k", "m", ("NORMAL", "BACTERIAL", "VIRAL"), (0.2, 0.07, 0.73))
    panel.show_prediction(prediction, ("BACTERIAL", "VIRAL"))
    assert panel.probabilities_shown() == {"NORMAL": 0.2, "BACTERIAL": 0.07, "VIRAL": 0.73}
    assert panel.top_label.text() == "Top class: VIRAL (73.0 %)"
    assert panel.pneumonia_bar() is not None and panel.pneumonia_bar().text() == "80.0 %"
    assert panel.bars.summary_name.toolTip().startswith("BACTERIAL + VIRAL: ")
    assert pneumonia_probability(prediction, ("BACTERIAL", "VIRAL")) == pytest.approx(0.8)

    other = Prediction(2, "k", "m", ("CLEAR", "OPAQUE"), (0.6, 0.4))
    panel.show_prediction(other, ())
    assert panel.probabilities_shown() == {"CLEAR": 0.6, "OPAQUE": 0.4}
    assert panel.pneumonia_bar() is None
    assert "not for clinical use" in panel.disclaimer.text()


def test_an_emptied_panel_says_no_value_not_zero_percent(qtbot) -> None:
    """Held results (read first, outside the training data, analysing) must not read as "0.0 %"
    (the walk through the real app showed 0.0 % on every bar of a flagged adult radiograph)."""
    panel = AiPanel()
    qtbot.addWidget(panel)
    panel.show_prediction(Prediction(1, "k", "m", ("NORMAL", "BACTERIAL", "VIRAL"), (0.2, 0.07, 0.73)),
                          ("BACTERIAL", "VIRAL"))
    panel.clear_prediction("Read first: the AI result is hidden until you record your call.")
    assert panel.bars.texts() == ["NORMAL —", "BACTERIAL —", "VIRAL —"]
    summary = panel.pneumonia_bar()
    assert summary is not None and summary.text() == "—" and summary.marker() is None
    assert all(bar.is_empty() and bar.marker() is None for bar in panel.bars.bars)
    assert not any(name.font().bold() for name in panel.bars.names)   # no class stays bold as "the call"
    assert set(panel.probabilities_shown().values()) == {0.0}
    panel.show_prediction(Prediction(2, "k", "m", ("NORMAL", "BACTERIAL", "VIRAL"), (0.5, 0.25, 0.25)),
                          ("BACTERIAL", "VIRAL"))
    assert panel.bars.texts() == ["NORMAL 50.0 %", "BACTERIAL 25.0 %", "VIRAL 25.0 %"]
    assert summary.text() == "50.0 %"


def test_the_pneumonia_probability_and_threshold_are_said_once(qtbot) -> None:
    """The call line says score and threshold; no second line under the bars repeats them."""
    from PySide6.QtWidgets import QLabel

    from cxrviewer.core.model_call import model_call

    panel = AiPanel()
    qtbot.addWidget(panel)
    panel.show()
    labels, p = ("NORMAL", "BACTERIAL", "VIRAL"), (0.303, 0.385, 0.312)
    prediction = Prediction(1, "k", "m", labels, p)
    panel.show_prediction(prediction, ("BACTERIAL", "VIRAL"), model_call(labels, p, 0.99))
    shown = [label.text() for label in panel.results_box.findChildren(QLabel) if label.isVisible()]
    assert sum("operating threshold" in text for text in shown) == 1, shown
    assert sum("69.7 %" in text for text in shown) == 1, shown       # the pneumonia sum, in the call line
    assert not any(text.startswith("Pneumonia probability") for text in shown), shown
    assert panel.pneumonia_bar().text() == "69.7 %" and panel.pneumonia_bar().marker() == pytest.approx(0.99)
    assert "not for clinical use" in panel.disclaimer.text()


@pytest.mark.slow
def test_window_appears_before_tensorflow_is_imported(models_root) -> None:
    """At the window's first paint TensorFlow is not imported; the model loads afterwards, in the
    worker process: the GUI process never imports TensorFlow."""
    # The wait runs the real event loop (app.exec, as the viewer does): QTest.qWait holds the
    # GIL while it sleeps, which starves the inference thread's TensorFlow import for minutes.
    code = (
        "import os, sys, time\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        f"os.environ['CXRVIEWER_MODELS_DIR'] = {str(models_root)!r}\n"
        "from PySide6.QtCore import QEvent, QObject, QSettings, QTimer\n"
        "from cxrviewer.ui.shell.app import create_application\n"
        "from cxrviewer.ui.shell.main_window import MainWindow\n"
        "from cxrviewer.ui.shell.settings import ViewerSettings\n"
        "app = create_application()\n"
        f"settings = ViewerSettings(QSettings({str(models_root / 'settings.ini')!r}, QSettings.Format.IniFormat))\n"
        "window = MainWindow(settings=settings)\n"
        "painted = []\n"
        "class FirstPaint(QObject):\n"
        "    def eventFilter(self, watched, event):\n"
        "        if event.type() == QEvent.Type.Paint and not painted:\n"
        "            painted.append('tensorflow' in sys.modules or 'keras' in sys.modules)\n"
        "        return False\n"
        "spy = FirstPaint()\n"
        "window.installEventFilter(spy)\n"
        "window.show()\n"
        "deadline = time.monotonic() + 180\n"
        "def poll():\n"
        "    if window.ai.current_model() is not None or window.ai.last_error() or time.monotonic() > deadline:\n"
        "        app.quit()\n"
        "timer = QTimer()\n"
        "timer.timeout.connect(poll)\n"
        "timer.start(50)\n"
        "app.exec()\n"
        "timer.stop()\n"
        "assert painted == [False], f'first paint with TensorFlow imported: {painted}'\n"
        "assert window.ai.current_model() is not None, window.ai.last_error() or 'no model after 180 s'\n"
        "assert 'tensorflow' not in sys.modules, 'the GUI process imported TensorFlow'\n"
        "window.close()\n"
        "assert not window.ai.service.is_running()\n"
        "print('OK', window.ai.current_model().name)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK other" in result.stdout    # no pneumonia3 here: the first model by folder name


# ----------------------------------------------------------------------- the window with a model
def test_first_image_gets_a_prediction_and_a_heat_map(qtbot, ai_window, shown: CamResult) -> None:
    window = ai_window
    ai = window.ai
    assert ai.current_model().name == "other"                       # the default: first registered
    assert ai.registered_models() == ["other", "tiny"]
    assert ai.device_label.text() == "AI ready · other · CPU"
    probabilities = ai.panel.probabilities_shown()
    assert list(probabilities) == ["CLEAR", "OPAQUE"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    top = max(probabilities, key=probabilities.get)
    assert ai.panel.caption().startswith(f"Heat map for {top} — p = {probabilities[top]:.2f}")
    assert shown.image_key == image_key(window.current_image())
    rows, cols = window.current_image().shape
    assert ai.overlay.mapRectToParent(ai.overlay.boundingRect()).size().toSize().width() == cols
    assert ai.overlay.mapRectToParent(ai.overlay.boundingRect()).size().toSize().height() == rows
    assert ai.overlay.isVisible() and ai.overlay.opacity() == pytest.approx(ai.controls.opacity())
    model_menu = [a.text() for a in ai.model_menu.actions() if a.isCheckable() and a.data()]
    assert model_menu == ["other", "tiny"]


def test_opacity_changes_only_the_item_opacity(qtbot, ai_window, shown, requests) -> None:
    ai = ai_window.ai
    recolours = ai.overlay.recolour_count
    ai.controls.opacity_slider.setValue(80)
    qtbot.wait(50)
    assert ai.overlay.opacity() == pytest.approx(0.8)
    assert requests == [] and ai.overlay.recolour_count == recolours


def test_threshold_and_colormap_recolour_without_a_request(qtbot, ai_window, shown, requests) -> None:
    ai = ai_window.ai
    index_before = ai.overlay.index_image().copy()
    recolours = ai.overlay.recolour_count
    ai.controls.threshold_slider.setValue(60)
    assert ai.overlay.recolour_count == recolours + 1
    assert ai.overlay.rgba()[ai.overlay.index_image() < 153, 3].max(initial=0) == 0
    ai.controls.set_colormap("jet")
    assert ai.overlay.recolour_count == recolours + 2
    qtbot.wait(50)
    assert requests == []
    np.testing.assert_array_equal(ai.overlay.index_image(), index_before)   # the same map, recoloured


def test_class_change_sends_exactly_one_request(qtbot, ai_window, shown, requests) -> None:
    ai = ai_window.ai
    with qtbot.waitSignal(ai.overlay_updated, timeout=RESULT_TIMEOUT_MS):
        ai.controls.class_combo.setCurrentIndex(ai.controls.class_combo.findData(1))
    assert len(requests) == 1
    args, _ = requests[0]
    assert args[1] == 1                                           # class_index
    cam = ai.shown_cam()
    assert cam.class_index == 1 and ai.panel.caption().startswith("Heat map for OPAQUE — p = ")
    # back to the top class: the map is in the cache, no second request
    ai.controls.class_combo.setCurrentIndex(0)
    assert ai.shown_cam() is shown and len(requests) == 1


def test_absolute_scale_rebuilds_the_map_without_a_request(qtbot, ai_window, shown, requests) -> None:
    ai = ai_window.ai
    per_image = ai.overlay.index_image().copy()
    assert per_image.max() == 255                                 # min–max: the peak is always hot
    ai.controls.set_normalisation("absolute")
    top = ai.controls.absolute_max()
    assert top >= float(shown.cam.max()) > 0
    assert ai.controls.colour_bar.labels()[0] == "0"
    absolute = ai.overlay.index_image()
    expected_peak = round(255 * float(shown.cam.max()) / top)
    assert abs(int(absolute.max()) - expected_peak) <= 1
    ai.controls.absolute_spin.setValue(top * 4)                    # the user widens the scale
    assert ai.overlay.index_image().max() < absolute.max()
    qtbot.wait(50)
    assert requests == []


def test_results_for_another_image_are_never_drawn(qtbot, ai_window, image_folder) -> None:
    window = ai_window
    ai = window.ai
    open_and_wait(qtbot, window, [image_folder])
    window.next_image()
    window.next_image()               # switch quickly: the newest load and request win
    qtbot.waitUntil(lambda: window.current_index() == 2, timeout=RESULT_TIMEOUT_MS)
    final = wait_for_overlay(qtbot, window)
    key = image_key(window.current_image())
    assert final.image_key == key and ai.overlay.image_key() == key

    # a late result for another image reaches the controller: it must be dropped
    index_before = ai.overlay.index_image().copy()
    shown_probabilities = ai.panel.probabilities_shown()
    model = ai.current_model()
    stale_cam = CamResult(10**6, "another-image#0", model.name, 0, "gradcam", model.default_layer,
                          np.full((4, 4), 9.0, np.float32))
    stale_prediction = Prediction(10**6, "another-image#0", model.name, model.labels,
                                  tuple([1.0] + [0.0] * (len(model.labels) - 1)))
    ai.service.prediction_ready.emit(stale_prediction)
    ai.service.cam_ready.emit(stale_cam)
    assert ai.shown_cam() is final and ai.overlay.image_key() == key
    np.testing.assert_array_equal(ai.overlay.index_image(), index_before)
    assert ai.panel.probabilities_shown() == shown_probabilities


def test_going_back_to_an_image_uses_the_cache(qtbot, ai_window, image_folder, requests) -> None:
    window = ai_window
    open_and_wait(qtbot, window, [image_folder])
    first = wait_for_overlay(qtbot, window)
    wait_for_image(qtbot, window, window.next_image)
    assert window.ai.overlay.image_key() in ("", image_key(window.current_image()))
    wait_for_overlay(qtbot, window)
    count = len(requests)
    wait_for_image(qtbot, window, window.previous_image)
    assert overlay_matches_shown_image(window) and window.ai.shown_cam() is first
    assert len(requests) == count


def test_heat_map_shortcut_toggles_the_overlay(qtbot, ai_window, shown) -> None:
    ai = ai_window.ai
    assert ai.toggle_action.shortcut().toString() == "O"
    ai.toggle_action.trigger()
    assert not ai.overlay.isVisible() and not ai.controls.is_overlay_visible()
    ai.controls.show_check.setChecked(True)
    assert ai.overlay.isVisible() and ai.toggle_action.isChecked()


def test_switching_models_reruns_the_current_image(qtbot, ai_window, shown) -> None:
    ai = ai_window.ai
    action = next(a for a in ai.model_menu.actions() if a.data() == "tiny")
    action.trigger()
    assert ai.current_model() is None and "Loading model tiny" in ai.panel.state_text()
    assert not ai.overlay.has_overlay()                          # the old model's map is gone
    with qtbot.waitSignal(ai.prediction_shown, timeout=MODEL_TIMEOUT_MS,
                          check_params_cb=lambda p: p.model_name == "tiny"):
        pass
    cam = wait_for_overlay(qtbot, ai_window)
    assert cam.model_name == "tiny"
    assert list(ai.panel.probabilities_shown()) == ["NORMAL", "BACTERIAL", "VIRAL"]
    assert ai.panel.pneumonia_bar() is not None and "operating threshold" in ai.panel.call_text()
    assert ai.panel.model_combo.currentText() == "tiny"
    assert ai_window.settings.qsettings.value("ai/model") == "tiny"   # remembered for next time


def test_model_failure_leaves_a_working_viewer_and_retry_recovers(
    qtbot, monkeypatch, make_window, image_folder, tmp_path
) -> None:
    root = tmp_path / "models"
    folder = make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=0))
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    tamper_weights(folder)
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(root))
    window = make_window(size=(1400, 900))
    ai = window.ai
    qtbot.waitUntil(lambda: bool(ai.last_error()), timeout=MODEL_TIMEOUT_MS)
    assert "checksum" in ai.last_error()
    assert "AI model not available" in ai.panel.state_text() and "checksum" in ai.panel.state_text()
    assert ai.panel.retry_button.isVisible()
    assert ai.device_label.text() == "AI: unavailable"

    image = open_and_wait(qtbot, window, [image_folder / "chest_2.png"])   # still a plain viewer
    assert image is not None and window.canvas.image() is image
    assert not ai.overlay.has_overlay()
    window.canvas.rotate_clockwise()
    assert window.canvas.orientation() != (1, 0, 0, 1)

    shutil.rmtree(folder)
    shutil.copytree(backup, folder)     # the user restores the model, then presses Retry
    ai.panel.retry_button.click()
    wait_for_model(qtbot, window)
    assert not ai.panel.retry_button.isVisible()
    cam = wait_for_overlay(qtbot, window)
    assert cam.model_name == "tiny"


def test_no_models_at_all_is_a_notice_not_a_crash(qtbot, monkeypatch, make_window, tmp_path) -> None:
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(tmp_path / "empty"))
    window = make_window()
    qtbot.waitUntil(lambda: bool(window.ai.last_error()), timeout=MODEL_TIMEOUT_MS)
    assert "no AI models found" in window.ai.panel.state_text()
    assert window.ai.panel.model_combo.currentText() == "(no models)"
    assert window.ai.device_label.text() == "AI: unavailable"


def test_close_stops_the_inference_thread(qtbot, ai_window) -> None:
    ai_window.close()
    assert not ai_window.ai.service.is_running()


def test_the_window_leaves_the_screen_before_close_waits_for_the_worker(qtbot, ai_window, monkeypatch) -> None:
    """Stopping the worker can wait for a running TensorFlow call; the user must not see that."""
    ai_window.show()
    qtbot.waitExposed(ai_window)
    service = ai_window.ai.service
    real_shutdown = service.shutdown
    visible_while_waiting: list[bool] = []

    def shutdown(*args, **kwargs):
        visible_while_waiting.append(ai_window.isVisible())
        return real_shutdown(*args, **kwargs)

    monkeypatch.setattr(service, "shutdown", shutdown)
    ai_window.close()
    assert visible_while_waiting == [False]
    assert not service.is_running()
