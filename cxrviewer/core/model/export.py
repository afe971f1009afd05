"""Write a model folder (weights + `model.json`): the ONE export path, used by the trainer and tests.

The folder layout the viewer's registry reads::

    <folder>/model.keras    weights + architecture (Keras 3 format, loads with safe_mode=True)
    <folder>/model.json     the model card, including the weights' sha256

The weights are written to a temporary name and renamed, and the card is written last,
so an interrupted export never leaves a folder that looks complete.
TensorFlow/Keras are only touched through the `model` object passed in.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxrviewer.core.model.architecture import DEFAULT_CAM_LAYER
from cxrviewer.core.model.card import CARD_FILENAME, ModelCard, sha256_file
from cxrviewer.core.model.preprocessing import PreprocessingSpec

if TYPE_CHECKING:
    import keras

WEIGHTS_FILENAME = "model.keras"
_CARD_FIELDS = (
    "schema_version", "name", "task", "labels", "input_size", "backbone", "cam_layer",
    "weights_file", "weights_sha256", "temperature", "operating_threshold", "preprocessing",
)


def export_model(
    model: keras.Model,
    folder: str | Path,
    *,
    name: str,
    labels: Sequence[str],
    backbone: str,
    cam_layer: str = DEFAULT_CAM_LAYER,
    task: str = "",
    temperature: float = 1.0,
    operating_threshold: float = 0.5,
    preprocessing: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Save `model` into `folder` with its card and return the card that was written.

    `input_size` is read from the model's input shape; `preprocessing` defaults to what
    `model_input` does at that size. Raises ValueError when the card would not describe
    the model (label count, CAM layer, non-square or non-gray input).
    """
    folder = Path(folder)
    input_shape = tuple(model.input_shape)
    if len(input_shape) != 4 or input_shape[1] != input_shape[2] or input_shape[3] != 1:
        raise ValueError(f"expected a (S, S, 1) gray input, the model takes {input_shape[1:]}")
    input_size = int(input_shape[1])
    n_outputs = int(model.output_shape[-1])
    if n_outputs != len(labels):
        raise ValueError(f"the model has {n_outputs} outputs but {len(labels)} labels were given")
    if cam_layer not in {layer.name for layer in model.layers}:
        raise ValueError(f"CAM layer {cam_layer!r} is not a layer of the model")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    clashing = sorted(set(extra or {}) & set(_CARD_FIELDS))
    if clashing:
        raise ValueError(f"extra card fields would overwrite typed fields: {', '.join(clashing)}")

    folder.mkdir(parents=True, exist_ok=True)
    stale_card = folder / CARD_FILENAME
    if stale_card.exists():
        stale_card.unlink()  # the folder is incomplete until the new card is written
    weights = folder / WEIGHTS_FILENAME
    partial = folder / f".partial-{os.getpid()}-{WEIGHTS_FILENAME}"  # must end in .keras
    try:
        model.save(partial)
        os.replace(partial, weights)
    finally:
        if partial.exists():
            partial.unlink()

    card = ModelCard(
        name=name,
        task=task,
        labels=tuple(str(label) for label in labels),
        input_size=input_size,
        backbone=backbone,
        cam_layer=cam_layer,
        weights_file=WEIGHTS_FILENAME,
        weights_sha256=sha256_file(weights),
        temperature=float(temperature),
        operating_threshold=float(operating_threshold),
        preprocessing=dict(preprocessing) if preprocessing is not None
        else PreprocessingSpec(input_size).to_dict(),
        extra=dict(extra or {}),
    )
    card.write(folder)
    return card
