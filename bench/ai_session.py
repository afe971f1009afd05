"""The AI session as a trainee lives it, with the bundled models (bench/ai_driver.py in a fresh process).

Figures per launch: launch → first prediction drawn (`ai_ready_s`), launch → TensorFlow
ready in the worker (`tensorflow_ready_s`, for reading `layer_change_s`), a first heat map at
pool4_relu (`layer_change_s`), pneumonia3 → covid3 drawn (`model_switch_s`), the longest gap
of a 20 ms GUI-thread timer over all of that (`max_gui_stall_ms`), and close → process gone
(`quit_s`). Each launch is paired with a bare `import tensorflow` in a fresh process, in the
same round, for `ai_ready_vs_import_tensorflow`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.startup import _child_env, _tail, import_tensorflow_seconds
from bench.timing import Timing

DRIVER = Path(__file__).resolve().parent / "ai_driver.py"
SESSION_TIMEOUT_S = 400.0


@dataclass(frozen=True)
class AiSessionResult:
    ai_ready: Timing
    import_tensorflow: Timing
    tensorflow_ready: Timing
    layer_change: Timing
    model_switch: Timing
    quit: Timing
    max_gui_stall_ms: float
    stall_by_phase_ms: dict[str, float]
    gui_imported_tensorflow: bool
    image: str


def _image(scratch: Path) -> Path:
    from bench.data import shared_radiograph

    path = shared_radiograph()
    if path is not None:
        return path
    import cv2

    synthetic = scratch / "radiograph.png"
    rows, cols = np.mgrid[0:1024, 0:1024]
    cv2.imwrite(str(synthetic), ((rows + cols) % 256).astype(np.uint8))
    return synthetic


def one_session(image: Path, scratch: Path) -> dict[str, float]:
    env = _child_env(scratch, False)
    env.pop("CXRVIEWER_MODELS_DIR", None)   # the bundled models
    start = time.time()
    process = subprocess.Popen([sys.executable, str(DRIVER), str(image)], env=env, cwd=scratch,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=SESSION_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        raise RuntimeError("the AI session did not finish in time") from exc
    gone = time.time()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {"error": _tail(stderr)}
    if "error" in report or "close_started" not in report:
        raise RuntimeError(f"AI session failed: {report.get('error', _tail(stderr))}")
    gaps = {str(k): float(v) for k, v in dict(report["gaps"]).items()}
    return {
        "ai_ready": report["ai_ready"] - start,
        "tensorflow_ready": report["tensorflow_ready"] - start,
        "layer_change": report["layer_drawn"] - report["layer_started"],
        "model_switch": report["switch_drawn"] - report["switch_started"],
        "quit": gone - report["close_started"],
        "gaps": gaps,
        "gui_tensorflow": bool(report["gui_tensorflow_imported"]),
    }


def run(runs: int) -> AiSessionResult:
    with tempfile.TemporaryDirectory(prefix="cxrbench-ai-") as folder:
        scratch = Path(folder)
        image = _image(scratch)
        one_session(image, scratch)           # warm-up: OS file cache, Python bytecode
        sessions, imports = [], []
        for _ in range(max(1, runs)):
            sessions.append(one_session(image, scratch))
            imports.append(import_tensorflow_seconds(scratch))
    stall: dict[str, float] = {}
    for session in sessions:
        for phase, gap in session["gaps"].items():
            stall[phase] = max(stall.get(phase, 0.0), gap)
    relevant = [gap for phase, gap in stall.items() if phase != "done"]
    return AiSessionResult(
        ai_ready=Timing(tuple(s["ai_ready"] for s in sessions)),
        import_tensorflow=Timing(tuple(imports)),
        tensorflow_ready=Timing(tuple(s["tensorflow_ready"] for s in sessions)),
        layer_change=Timing(tuple(s["layer_change"] for s in sessions)),
        model_switch=Timing(tuple(s["model_switch"] for s in sessions)),
        quit=Timing(tuple(s["quit"] for s in sessions)),
        max_gui_stall_ms=max(relevant) if relevant else float("nan"),
        stall_by_phase_ms=stall,
        gui_imported_tensorflow=any(s["gui_tensorflow"] for s in sessions),
        image=image.name,
    )
