"""The real bundled models in the real main window: the window never stalls while the AI works.

A tiny model hid the freeze: tracing its graph takes milliseconds. Here pneumonia3 (DenseNet)
answers a layer change (gradients: TensorFlow in the worker process) and a switch to covid3,
while a 20 ms GUI-thread timer records its longest gap; then the worker is killed mid-request.
The gap bound is a freeze detector, not a speed target: the freeze it guards against starved the
GUI thread for the whole trace (seconds), while a loaded 2-core CI machine can delay one tick by a
few hundred milliseconds. bench/run.py measures the figure itself (`max_gui_stall_ms`).
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from cxrviewer.core.model.runtime import image_key

from .helpers import open_and_wait
from .synthetic import gradient, write_png

pytestmark = pytest.mark.slow

MAX_GUI_GAP_MS = 1000
ANSWER_TIMEOUT_MS = 180_000


class GapMeter:
    """A 20 ms timer on the GUI thread; `worst_ms` is its longest gap between ticks."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst_ms = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.worst_ms = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self.last) * 1000)
        self.last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.worst_ms


def _shown_for(window, layer: str | None = None, model: str | None = None) -> bool:
    image = window.current_image()
    cam = window.ai.shown_cam()
    return (image is not None and cam is not None and cam.image_key == image_key(image)
            and (layer is None or cam.layer == layer) and (model is None or cam.model_name == model))


@pytest.fixture
def real_window(qtbot, bundled_models, make_window, tmp_path):
    path = tmp_path / "chest.png"
    pixels = gradient(512, 448, high=255).astype(np.uint8)
    write_png(path, np.roll(pixels, 40, axis=1))
    window = make_window(size=(1400, 900))
    meter = GapMeter()
    meter.start()
    open_and_wait(qtbot, window, [path])
    qtbot.waitUntil(lambda: _shown_for(window, model="pneumonia3"), timeout=ANSWER_TIMEOUT_MS)
    window.meter = meter
    return window


def test_layer_change_and_model_switch_never_stall_the_window(qtbot, real_window):
    window, meter = real_window, real_window.meter
    startup_gap = meter.stop()
    assert startup_gap < MAX_GUI_GAP_MS * 2, f"start-up stalled the GUI for {startup_gap:.0f} ms"

    controls = window.ai.controls
    index = controls.layer_combo.findData("pool4_relu")
    assert index >= 0, "pool4_relu is offered in the layer chooser"
    meter.start()
    controls.layer_combo.setCurrentIndex(index)
    qtbot.waitUntil(lambda: _shown_for(window, layer="pool4_relu"), timeout=ANSWER_TIMEOUT_MS)
    layer_gap = meter.stop()
    assert layer_gap < MAX_GUI_GAP_MS, f"the layer change stalled the GUI for {layer_gap:.0f} ms"

    meter.start()
    window.ai.switch_model("covid3")
    qtbot.waitUntil(lambda: _shown_for(window, model="covid3"), timeout=ANSWER_TIMEOUT_MS)
    switch_gap = meter.stop()
    assert switch_gap < MAX_GUI_GAP_MS, f"the model switch stalled the GUI for {switch_gap:.0f} ms"
    assert window.ai.current_model().name == "covid3"
    assert list(window.ai.panel.probabilities_shown()) == ["COVID-19", "NORMAL", "VIRAL"]
    assert window.ai.device_label.text() == "AI ready · covid3 · CPU" or "GPU" in window.ai.device_label.text()


def test_killing_the_worker_mid_request_ends_in_a_notice_a_new_worker_and_the_answer(qtbot, real_window):
    window = real_window
    service = window.ai.service
    old_pid = service.worker_pid
    controls = window.ai.controls
    index = controls.layer_combo.findData("pool3_relu")
    controls.layer_combo.setCurrentIndex(index)       # a request the worker is now computing
    os.kill(old_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "stopped unexpectedly" in window.statusBar().currentMessage(), timeout=30_000)
    qtbot.waitUntil(lambda: _shown_for(window, layer="pool3_relu"), timeout=ANSWER_TIMEOUT_MS)
    assert service.worker_pid not in (None, old_pid)
    assert window.ai.current_model().name == "pneumonia3"
    assert "restarted" in window.ai.panel.state_text() or "ready" in window.ai.panel.state_text()


def test_closing_the_window_ends_the_worker(qtbot, real_window):
    """bench/run.py measures how fast (`quit_s`); here: the process is gone once close returns."""
    pid = real_window.ai.service.worker_pid
    real_window.close()
    assert not real_window.ai.service.is_running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
