"""Child process for the AI session figures: `python -m cxrviewer IMAGE` with the bundled model.

Run by bench/ai_session.py with QT_QPA_PLATFORM=offscreen and throw-away settings/log folders.
It hooks `MainWindow.showEvent`, starts a 20 ms GUI-thread timer (its longest gap is the
stall), then drives what a trainee does:

1. launch → the first prediction and heat map of IMAGE drawn               (ai_ready)
2. wait until the worker reports TensorFlow loaded (it preloads in the background)
3. Layer ▸ pool4_relu → that map drawn, the first time for that layer      (layer_change)
4. Model ▸ covid3 → covid3's prediction and map drawn                       (model_switch)
5. close the window; the parent measures close → process gone             (quit)

One JSON line on stdout (wall-clock stamps, seconds since the epoch), printed at close.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

TIMEOUT_MS = 300_000
LAYER = "pool4_relu"
SWITCH_TO = "covid3"


def _emit(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    image_path = sys.argv[1]

    from PySide6.QtCore import QTimer

    import cxrviewer.ui.shell.main_window as main_window
    from cxrviewer.core.model.runtime import image_key

    state: dict[str, object] = {"phase": "start", "gaps": {}, "worst": 0.0}
    meter = {"last": 0.0}

    def tick() -> None:
        now = time.perf_counter()
        if meter["last"]:
            gap = (now - meter["last"]) * 1000
            phase = str(state["phase"])
            gaps = state["gaps"]
            gaps[phase] = max(gaps.get(phase, 0.0), gap)  # type: ignore[union-attr]
        meter["last"] = now

    def drawn(window, layer: str | None = None, model: str | None = None) -> bool:
        image = window.current_image()
        cam = window.ai.shown_cam()
        return (image is not None and cam is not None and cam.image_key == image_key(image)
                and (layer is None or cam.layer == layer) and (model is None or cam.model_name == model))

    def fail(window, message: str) -> None:
        _emit({"error": message})
        window.close()

    def on_overlay(window) -> None:
        phase = state["phase"]
        if phase == "start" and drawn(window, model="pneumonia3"):
            state["ai_ready"] = time.time()
            state["phase"] = "waiting_for_tensorflow"
            if state.get("tensorflow_ready"):
                change_layer(window)
        elif phase == "layer_change" and drawn(window, layer=LAYER):
            state["layer_drawn"] = time.time()
            state["phase"] = "model_switch"
            state["switch_started"] = time.time()
            window.ai.switch_model(SWITCH_TO)
        elif phase == "model_switch" and drawn(window, model=SWITCH_TO):
            state["switch_drawn"] = time.time()
            state["phase"] = "done"
            QTimer.singleShot(100, lambda: close(window))

    def on_tensorflow_ready(window, _name: str) -> None:
        if "tensorflow_ready" not in state:
            state["tensorflow_ready"] = time.time()
        if state["phase"] == "waiting_for_tensorflow":
            change_layer(window)

    def change_layer(window) -> None:
        combo = window.ai.controls.layer_combo
        index = combo.findData(LAYER)
        if index < 0:
            fail(window, f"layer {LAYER} is not offered")
            return
        state["phase"] = "layer_change"
        state["layer_started"] = time.time()
        combo.setCurrentIndex(index)

    def close(window) -> None:
        state["close_started"] = time.time()
        state["gui_tensorflow_imported"] = "tensorflow" in sys.modules
        _emit({key: value for key, value in state.items() if key != "phase"})
        window.close()

    original_show_event = main_window.MainWindow.showEvent
    started: list[bool] = []

    def show_event(self, event) -> None:  # type: ignore[no-untyped-def]
        original_show_event(self, event)
        if started:
            return
        started.append(True)
        state["shown"] = time.time()
        timer = QTimer(self)
        timer.setInterval(20)
        timer.timeout.connect(tick)
        timer.start()
        self.ai.overlay_updated.connect(lambda _key: on_overlay(self))
        self.ai.service.tensorflow_ready.connect(lambda name: on_tensorflow_ready(self, name))
        self.ai.failed.connect(lambda message: fail(self, f"AI: {message}"))
        QTimer.singleShot(TIMEOUT_MS, lambda: fail(self, f"timed out in phase {state['phase']}"))

    main_window.MainWindow.showEvent = show_event  # type: ignore[method-assign]

    from cxrviewer.cli import main as cli_main

    raise SystemExit(cli_main([image_path]))   # a normal exit: quit_s includes the interpreter's shutdown


if __name__ == "__main__":
    main()
