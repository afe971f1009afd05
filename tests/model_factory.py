"""Tiny random-weight model folders for tests, written through the real export path.

`build_tiny_classifier` mirrors `architecture.build_classifier` — the same `input_stem` and
`classifier_head`, so the same in-graph preprocessing and the layer names the CAM code relies
on ("relu" feeding "gap" → "head_dropout" → "predictions") — with a few small conv layers
instead of a DenseNet, so a model builds, saves and loads in well under a second. Folders are only ever written to
tmp dirs: random weights are never shipped.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cxrviewer.core.model.architecture import classifier_head, input_stem
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.export import export_model
from cxrviewer.core.types import Window, XrayImage

TINY_LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
TINY_BACKBONE = "tiny-test"
# For windows that export views of the synthetic DICOMs (patient Test^Patient): the export guard
# would (rightly) refuse a sidecar whose model card holds the word "test".
EXPORT_SAFE_BACKBONE = "tiny-cnn"
TINY_LAYERS = ("relu", "pool2_pool", "conv2_relu", "pool1_pool", "conv1_relu")  # last first


def build_tiny_classifier(n_classes: int = 3, input_size: int = 32, seed: int = 0, dropout: float = 0.3,
                          intensity: str = "none"):
    """A flat functional model shaped like the real classifier: (S,S,1) 0–255 in, softmax out.

    Spatial sizes: conv1 S, pool1 S/2, conv2 S/2, pool2 S/4, "relu" S/4 (the GAP input).
    """
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    gray, x = input_stem(input_size, intensity)
    x = layers.Conv2D(8, 3, padding="same", name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.AveragePooling2D(2, name="pool1_pool")(x)
    x = layers.Conv2D(12, 3, padding="same", name="conv2_conv")(x)
    x = layers.Activation("relu", name="conv2_relu")(x)
    x = layers.AveragePooling2D(2, name="pool2_pool")(x)
    x = layers.Conv2D(16, 3, padding="same", name="conv3_conv")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    return keras.Model(gray, classifier_head(x, n_classes, dropout), name="cxr_tiny")


def make_model_folder(
    parent: Path,
    name: str = "tiny",
    labels: Sequence[str] = TINY_LABELS,
    input_size: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    model=None,
    operating_threshold: float = 0.5,
    backbone: str = TINY_BACKBONE,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Build (or take) a model and export it to `parent/name` with the real export code."""
    if model is None:
        model = build_tiny_classifier(len(labels), input_size, seed)
    folder = Path(parent) / name
    export_model(
        model, folder, name=name, labels=labels, backbone=backbone, cam_layer="relu",
        task="test", temperature=temperature, operating_threshold=operating_threshold,
        extra={"note": "random weights, tests only", **(extra or {})},
    )
    return folder


def tamper_weights(folder: Path) -> None:
    """Change the weights file after export so its checksum no longer matches the card."""
    card = ModelCard.read(folder)
    with open(Path(folder) / card.weights_file, "ab") as handle:
        handle.write(b"\0")


def make_xray(size: int = 64, seed: int = 0, frame_index: int = 0) -> XrayImage:
    """A synthetic gray 'radiograph' (smooth blobs + noise) with a content hash."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    pixels = 1000.0 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.5) ** 2) * 12.0)
    pixels += 600.0 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.4) ** 2) * 20.0)
    pixels += rng.normal(0.0, 40.0, (size, size))
    pixels = pixels.astype(np.float32)
    pixels.setflags(write=False)
    return XrayImage(
        path=Path(f"synthetic_{seed}.png"),
        display_name=f"synthetic {seed}",
        pixels=pixels,
        default_window=Window(center=600.0, width=1400.0),
        presets=(),
        photometric="MONOCHROME2",
        frame_index=frame_index,
        sha256=hashlib.sha256(pixels.tobytes()).hexdigest(),
    )


def make_gated_model_folder(parent: Path, name: str = "tiny", threshold: float | None = None) -> Path:
    """A tiny model with an ONNX export and an out-of-distribution gate fitted on its own features
    of smooth synthetic films (`threshold` overrides the calibrated one, e.g. -1 to flag everything)."""
    import json
    from dataclasses import replace

    from cxrviewer.core.model.card import sha256_file
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.ood_gate import OOD_CARD_KEY, OOD_FILENAME, OodGate
    from trainer.onnx_export import export_onnx

    folder = make_model_folder(parent, name, model=build_tiny_classifier(3, 32, seed=2))
    export_onnx(folder)
    engine = ModelEngine.open(folder)
    films = [make_xray(96, seed=seed) for seed in range(120)]
    features = np.stack([engine.features(model_input(film, 32))[0] for film in films])
    labels = np.array(["NORMAL", "VIRAL"] * 60)
    gate = OodGate.fit(features[:80], labels[:80], features[80:], components=8)
    if threshold is not None:
        gate = replace(gate, threshold=float(threshold))
    gate.save(folder / OOD_FILENAME)
    card = json.loads((folder / "model.json").read_text())
    card[OOD_CARD_KEY] = {"file": OOD_FILENAME, "sha256": sha256_file(folder / OOD_FILENAME),
                          "threshold": gate.threshold}
    (folder / "model.json").write_text(json.dumps(card))
    return folder
