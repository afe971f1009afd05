"""A model engine for the worker-process protocol tests: no TensorFlow, no ONNX, controllable.

The worker imports `open_fake` by name ("tests.fake_engine:open_fake") in its own process.
The model name says how it behaves:

    fake                answers in ~1 ms
    slow-<ms>           each request takes <ms> milliseconds
    fail                loading raises ModelLoadError
    crash-on-load       the process dies while loading (os._exit)

A request with layer "die" kills the worker process with SIGKILL the first time it is seen
(a marker file in the models root remembers), so the replacement worker answers it.
Every computed request appends its id to `<root>/runs.txt`.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import InferenceError, ModelLoadError
from cxrviewer.core.model.card import ModelCard

FACTORY = "tests.fake_engine:open_fake"
LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
INPUT_SIZE = 16


class FakeEngine:
    runtime = "fake"
    device = "CPU"
    tensorflow_loaded = True
    has_untraced = False

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.folder = root / name
        self.labels = LABELS
        self.input_size = INPUT_SIZE
        self.default_layer = "relu"
        self.conv_layers = ("relu", "conv1_relu")
        self.layer_grids = {"relu": (2, 2), "conv1_relu": (4, 4)}
        self.cam_layer_for_dense_weights = "relu"
        self.card = ModelCard(name, LABELS, INPUT_SIZE, "fake", "relu", "none", "")
        self.delay = float(name.split("-", 1)[1]) / 1000 if name.startswith("slow-") else 0.0

    def warm_up(self) -> None:
        pass

    def preload_tensorflow(self) -> None:
        pass

    def trace_pending(self) -> bool:
        return False

    def _record(self) -> None:
        with open(self.root / "runs.txt", "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        mean = float(np.asarray(x).mean()) / 255.0
        raw = np.array([1.0 + mean, 1.0, 1.0 - mean / 2], np.float64)
        return (raw / raw.sum()).astype(np.float32)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self._record()
        time.sleep(self.delay)
        return self._probabilities(batch)[np.newaxis]

    def predict_and_cam(self, x, class_index=None, layer=None, method="gradcam"):
        if layer == "die":
            marker = self.root / "died-once"
            if not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
            layer = None
        if layer not in (None, "relu", "conv1_relu"):
            raise InferenceError(f"model {self.name} has no layer named {layer!r}")
        self._record()
        time.sleep(self.delay)
        rows, cols = self.layer_grids[layer or "relu"]
        return self._probabilities(x), np.full((rows, cols), float(np.asarray(x).mean()), np.float32)


def open_fake(name: str, root: Path | None) -> FakeEngine:
    assert root is not None, "the fake engine keeps its bookkeeping in the models root"
    name = Path(name).name if "/" in name else (name or "fake")   # a restarted worker reloads by folder
    if name == "fail":
        raise ModelLoadError("model fail could not be loaded: simulated failure")
    if name == "crash-on-load":
        os._exit(3)
    return FakeEngine(name, Path(root))


def runs(root: Path) -> int:
    path = Path(root) / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0
