"""The model the benchmarks run: a given folder, an untrained DenseNet121, or a tiny one (--quick).

Folders are written through the real export path (`core.model.export.export_model`) into a
scratch directory, never into resources/models.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrviewer.core.model.architecture import classifier_head, input_stem

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
FULL_INPUT_SIZE = 192
QUICK_INPUT_SIZE = 32


@dataclass(frozen=True)
class BenchModel:
    folder: Path
    input_size: int
    description: str


def build_tiny(n_classes: int = 3, input_size: int = QUICK_INPUT_SIZE) -> Any:
    """A few convolutions with the real head and layer names ("relu" → "gap" → "predictions")."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    gray, x = input_stem(input_size)
    x = layers.Conv2D(8, 3, padding="same", name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.AveragePooling2D(2, name="pool1_pool")(x)
    x = layers.Conv2D(16, 3, padding="same", name="conv2_conv")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    return keras.Model(gray, classifier_head(x, n_classes), name="cxr_bench_tiny")


def build(quick: bool, input_size: int | None = None) -> tuple[Any, str]:
    """An untrained classifier: tiny for --quick, else DenseNet121 as the bundled model is built."""
    from cxrviewer.core.model.architecture import build_classifier

    if quick:
        size = input_size or QUICK_INPUT_SIZE
        return build_tiny(len(LABELS), size), f"tiny CNN, {size} px, random weights"
    size = input_size or FULL_INPUT_SIZE
    return build_classifier(len(LABELS), size, "densenet121"), f"DenseNet121, {size} px, random weights"


def prepare(scratch: Path, quick: bool, model_folder: Path | None = None) -> BenchModel:
    """The model folder to benchmark: `model_folder` if given, else a fresh export in `scratch`."""
    from cxrviewer.core.model.runtime import read_card

    if model_folder is not None:
        card = read_card(model_folder)
        return BenchModel(Path(model_folder), card.input_size, f"{card.name} ({card.backbone}, {card.input_size} px)")
    from cxrviewer.core.model.export import export_model

    model, description = build(quick)
    folder = scratch / "models" / "bench"
    export_model(model, folder, name="bench", labels=LABELS, backbone="bench", cam_layer="relu",
                 task="benchmark", extra={"note": "random weights, benchmark only"})
    try:
        from trainer.onnx_export import export_onnx

        export_onnx(folder)          # the viewer's fast path, as `cxr-train export` writes it
    except ImportError as exc:       # no tf2onnx: the viewer's engine falls back to TensorFlow
        logging.getLogger(__name__).warning("no ONNX export for the benchmark model: %s", exc)
    return BenchModel(folder, int(model.input_shape[1]), description)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's and tf2onnx's chatter out of the table."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
