"""Write a model folder's ONNX export: `model.onnx` + `head.npz`, recorded in the card.

The ONNX graph runs from the input to (the GAP input layer's activations, the pooled
features); the Dense head travels as plain arrays (see cxrviewer/core/model/onnx_engine.py
for why that is enough for every heat-map method at that layer). After writing, the export
is checked against TensorFlow on random and real-looking inputs: probabilities within
PROBABILITY_TOLERANCE, maps within CAM_RELATIVE_TOLERANCE of their maximum; otherwise
nothing is recorded and the viewer keeps using TensorFlow.

Needs tf2onnx and onnxruntime (the `train` / `dev` extras).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.model.card import ModelCard, sha256_file
from cxrviewer.core.model.onnx_engine import (
    CAM_RELATIVE_TOLERANCE,
    HEAD_FILENAME,
    ONNX_CARD_KEY,
    ONNX_FILENAME,
    PROBABILITY_TOLERANCE,
    OnnxEngine,
    OnnxExport,
)
from cxrviewer.core.xai.cam import CAM, METHODS

log = logging.getLogger(__name__)

OPSET = 17


def _convert(engine: Any, path: Path) -> str:
    import tensorflow as tf
    import tf2onnx

    model = engine.loaded.model
    gap_layer = engine.cam_layer_for_dense_weights
    if gap_layer is None:
        raise ValueError(f"model {engine.name} has no GlobalAveragePooling → Dense head; it cannot be exported for the fast path")
    head = model.layers[-1]
    import keras

    trunk = keras.Model(model.inputs, [model.get_layer(gap_layer).output, head.input], name="trunk")
    size = engine.input_size
    spec = (tf.TensorSpec((None, size, size, 1), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(trunk, input_signature=spec, opset=OPSET, output_path=str(path))
    return f"tf2onnx {tf2onnx.__version__}, opset {OPSET}"


def _write_head(engine: Any, path: Path) -> None:
    import keras

    head = engine.loaded.model.layers[-1]
    arrays: dict[str, np.ndarray] = {
        "kernel": np.asarray(keras.ops.convert_to_numpy(head.kernel), np.float32),
        "activation": np.array(keras.activations.serialize(head.activation)),
        "gap_input_layer": np.array(engine.cam_layer_for_dense_weights),
        "conv_layers": np.array(list(engine.conv_layers)),
        "grids": np.array([engine.layer_grids.get(name, (0, 0)) for name in engine.conv_layers], np.int64),
    }
    if head.bias is not None:
        arrays["bias"] = np.asarray(keras.ops.convert_to_numpy(head.bias), np.float32)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def compare_with_tensorflow(folder: Path, card: ModelCard, n_inputs: int = 4, seed: int = 0) -> dict[str, float]:
    """Largest |ONNX − TensorFlow| of probabilities and (relative) maps over a few inputs, every method."""
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

    export = OnnxExport.from_card(card)
    assert export is not None
    fast = OnnxEngine(folder, card, export)
    reference = InferenceEngine(load_classifier(folder), xla=False)
    rng = np.random.default_rng(seed)
    size = card.input_size
    inputs = [np.zeros((size, size, 1), np.float32), np.full((size, size, 1), 255.0, np.float32)]
    inputs += [rng.uniform(0, 255, (size, size, 1)).astype(np.float32) for _ in range(max(n_inputs - 2, 0))]
    worst_probability = worst_cam = 0.0
    for x in inputs:
        worst_probability = max(worst_probability, float(np.abs(fast.predict(x) - reference.predict(x)).max()))
        for method in METHODS:
            layer = fast.cam_layer_for_dense_weights
            p_fast, cam_fast = fast.predict_and_cam(x, None, layer, method)
            p_ref, cam_ref = reference.predict_and_cam(x, None, layer, method)
            scale = max(float(cam_ref.max()), 1e-6)
            worst_cam = max(worst_cam, float(np.abs(cam_fast - cam_ref).max()) / scale)
            worst_probability = max(worst_probability, float(np.abs(p_fast - p_ref).max()))
    return {"probability_max_abs_diff": worst_probability, "cam_max_relative_diff": worst_cam}


def export_onnx(folder: str | Path) -> ModelCard:
    """Write and verify the ONNX export of a model folder; returns the updated (written) card."""
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier, read_card

    folder = Path(folder)
    card = read_card(folder)
    engine = InferenceEngine(load_classifier(folder), xla=False)
    graph, head = folder / ONNX_FILENAME, folder / HEAD_FILENAME
    converter = _convert(engine, graph)
    _write_head(engine, head)
    export = OnnxExport(ONNX_FILENAME, sha256_file(graph), HEAD_FILENAME, sha256_file(head))
    candidate = replace(card, extra={**card.extra, ONNX_CARD_KEY: export.to_card({"converter": converter})})
    diffs = compare_with_tensorflow(folder, candidate)
    if diffs["probability_max_abs_diff"] > PROBABILITY_TOLERANCE or diffs["cam_max_relative_diff"] > CAM_RELATIVE_TOLERANCE:
        graph.unlink(missing_ok=True)
        head.unlink(missing_ok=True)
        raise ValueError(f"the ONNX export of {card.name} disagrees with TensorFlow ({diffs}); not recorded")
    entry = export.to_card({
        "converter": converter,
        "checked_against_tensorflow": {**{k: float(f"{v:.3g}") for k, v in diffs.items()},
                                       "tolerance": {"probability": PROBABILITY_TOLERANCE,
                                                     "cam_relative": CAM_RELATIVE_TOLERANCE},
                                       "methods": [m for m in METHODS if m != CAM] + [CAM]},
    })
    card = replace(card, extra={**card.extra, ONNX_CARD_KEY: entry})
    card.write(folder)
    log.info("ONNX export of %s written (%s)", card.name, diffs)
    return card
