"""Model figures: bare forward, the viewer's forward and full request, ONNX Runtime, folder throughput.

* forward: the Keras model through one fixed-signature `tf.function`, batch 1 (the floor).
* viewer forward: `InferenceEngine.predict` on one model input.
* predict + CAM: `run_request` — preprocessing (`model_input`), probabilities and the
  Grad-CAM of the top class, packaged as frozen results — what the viewer's worker runs.
* ONNX Runtime: the same Keras model converted with tf2onnx, CPU execution provider.
* folder: the `cxrviewer predict` pipeline over N images against a bare batched forward of
  the same, already preprocessed, N inputs; its start-up through `cxrviewer.cli.main`.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.timing import Timing, interleaved

log = logging.getLogger(__name__)
BATCH_SIZE = 8


@dataclass(frozen=True)
class RequestResult:
    timings: dict[str, Timing]
    onnx_skip_reason: str
    image: str


@dataclass(frozen=True)
class FolderResult:
    command: Timing            # seconds per image, steady state
    bare: Timing               # seconds per image, bare batched forward
    startup_s: float           # `cxrviewer predict` on one image: model load, tracing (nan if unavailable)
    path: str                  # what was timed per image
    notes: tuple[str, ...] = field(default_factory=tuple)


def bare_forward(model: Any, input_size: int, batch: int | None = 1) -> Callable[[np.ndarray], np.ndarray]:
    """model(x) through one fixed-signature tf.function (traced on first call)."""
    import tensorflow as tf

    function = tf.function(lambda x: model(x, training=False),
                           input_signature=[tf.TensorSpec([batch, input_size, input_size, 1], tf.float32)])
    return lambda x: function(tf.constant(x)).numpy()


def onnx_runner(model: Any, input_size: int, scratch: Path) -> tuple[Callable[[np.ndarray], Any] | None, str]:
    """An ONNX Runtime session on the converted model, or None and the reason it cannot be made."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed (pip install onnxruntime tf2onnx: the `bench` extra)"
    import tensorflow as tf

    path = scratch / "model.onnx"
    errors: list[str] = []
    try:
        import tf2onnx

        spec = (tf.TensorSpec([None, input_size, input_size, 1], tf.float32, name="image"),)
        with contextlib.redirect_stdout(io.StringIO()):
            tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    except Exception as exc:  # noqa: BLE001 - any converter failure becomes a printed reason
        errors.append(f"tf2onnx: {type(exc).__name__}: {str(exc)[:120]}")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model.export(str(path), format="onnx")
        except Exception as exc2:  # noqa: BLE001
            errors.append(f"keras export: {type(exc2).__name__}: {str(exc2)[:120]}")
            return None, "the model could not be converted to ONNX (" + "; ".join(errors) + ")"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return None, f"the ONNX graph takes {len(inputs)} inputs (constants were not folded)"
    name = inputs[0].name
    probe = np.random.default_rng(0).uniform(0, 255, (1, input_size, input_size, 1)).astype(np.float32)
    expected = np.asarray(model(probe, training=False))
    got = session.run(None, {name: probe})[0]
    if not np.allclose(got, expected, atol=1e-3):
        return None, f"ONNX Runtime disagrees with Keras (max diff {np.abs(got - expected).max():.2g})"
    return (lambda x: session.run(None, {name: x})), ""


def request_benchmark(model_folder: Path, image: Any, image_label: str, runs: int, scratch: Path,
                      with_onnx: bool = True) -> RequestResult:
    """Interleaved: bare forward, viewer forward, full request (predict + Grad-CAM), ONNX Runtime."""
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.model.runtime import InferenceRequest, load_classifier, run_request

    loaded = load_classifier(model_folder)
    engine = ModelEngine.open(model_folder)     # the viewer's engine: ONNX Runtime when exported
    engine.warm_up()
    size = engine.input_size
    x = model_input(image, size)[np.newaxis]
    forward = bare_forward(loaded.model, size)
    functions: dict[str, Callable[[], object]] = {
        "forward": lambda: forward(x),
        "viewer_forward": lambda: engine.predict(x),
        "predict_cam": lambda: run_request(engine, InferenceRequest(1, image)),
    }
    reason = "not requested"
    if with_onnx:
        runner, reason = onnx_runner(loaded.model, size, scratch)
        if runner is not None:
            functions["onnxruntime"] = lambda: runner(x)
    return RequestResult(interleaved(functions, runs, warmup=2), reason, image_label)


def _predict_command_available() -> bool:
    import cxrviewer.cli as cli

    return "predict" in getattr(cli, "_SUBCOMMANDS", {})


def _run_predict_command(folder: Path, models_dir: Path) -> float:
    """Seconds for `cxrviewer predict --json FOLDER` in this process (output checked, then discarded)."""
    from cxrviewer.cli import main

    previous = os.environ.get("CXRVIEWER_MODELS_DIR")
    os.environ["CXRVIEWER_MODELS_DIR"] = str(models_dir)
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as output:
            status = main(["predict", "--json", str(folder)])
        elapsed = time.perf_counter() - start
    finally:
        if previous is None:
            os.environ.pop("CXRVIEWER_MODELS_DIR", None)
        else:
            os.environ["CXRVIEWER_MODELS_DIR"] = previous
    lines = [line for line in output.getvalue().splitlines() if line.startswith("{")]
    if status != 0 or not lines:
        raise RuntimeError(f"`cxrviewer predict --json` exited with status {status}")
    return elapsed


def _command_pipeline(engine: Any) -> Callable[[list[Path]], object] | None:
    """The command's own loop with an already loaded model: `score_files` (load-ahead threads
    + batched `predict_many`), when cxrviewer/core/model/batch.py provides it."""
    try:
        from cxrviewer.commands.predict import expand_inputs
        from cxrviewer.core.model.batch import score_files
    except ImportError:
        return None

    def run(files: list[Path]) -> object:
        lines = list(score_files(engine, expand_inputs(files), batch_size=BATCH_SIZE))
        failed = [line for line in lines if getattr(line, "error", None)]
        if len(lines) != len(files) or failed:
            raise RuntimeError(f"score_files returned {len(lines)} lines, {len(failed)} failed")
        return lines

    return run


def _engine_path(engine: Any) -> Callable[[list[Path]], object]:
    from cxrviewer.core.io import load_image

    return lambda files: engine.predict_images([load_image(path) for path in files], batch_size=BATCH_SIZE)


def folder_benchmark(model_folder: Path, files: list[Path], scratch: Path, runs: int) -> FolderResult:
    """Seconds per image of the `cxrviewer predict` pipeline vs the bare batched forward.

    Per round: the command's loop (`score_files`, images loaded ahead by its threads) over
    the N files with a loaded, warm model, then the bare batched forward over the same N
    inputs already in memory. The command's fixed cost (model load, tracing) is timed apart:
    `cxrviewer.cli.main(["predict", "--json", folder])` on a one-image folder.
    """
    from bench.data import link_folder
    from cxrviewer.core.io import load_image
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.model.runtime import load_classifier

    loaded = load_classifier(model_folder)
    size = loaded.card.input_size
    inputs = np.stack([model_input(load_image(path), size) for path in files])
    forward = bare_forward(loaded.model, size, batch=None)

    def bare() -> None:
        for start in range(0, len(inputs), BATCH_SIZE):
            forward(inputs[start:start + BATCH_SIZE])

    notes: list[str] = []
    startup = math.nan
    if _predict_command_available():
        one = link_folder(files[:1], scratch / "folder_one")
        try:
            _run_predict_command(one, model_folder.parent)   # warm: imports, file cache
            startup = _run_predict_command(one, model_folder.parent)
        except Exception as exc:  # noqa: BLE001 - report and go on with the pipeline figures
            notes.append(f"`cxrviewer predict --json` failed: {exc}")
    else:
        notes.append("`cxrviewer predict` is not registered: no start-up figure")
    engine = ModelEngine.open(model_folder)
    engine.warm_up()
    pipeline = _command_pipeline(engine)
    path = "cxrviewer.core.model.batch.score_files"
    if pipeline is None:
        pipeline = _engine_path(engine)
        path = "load_image + ModelEngine.predict_images"
        notes.append("cxrviewer/core/model/batch.py has no score_files: measured " + path)
    pipeline(files[: min(len(files), 2 * BATCH_SIZE)])
    bare()
    command_runs, bare_runs = [], []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        pipeline(files)
        command_runs.append((time.perf_counter() - start) / len(files))
        start = time.perf_counter()
        bare()
        bare_runs.append((time.perf_counter() - start) / len(files))
    return FolderResult(Timing(tuple(command_runs)), Timing(tuple(bare_runs)), startup, path, tuple(notes))
