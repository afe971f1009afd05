"""Build the classifier: a flat keras.applications DenseNet with a GAP → dropout → Dense head.

"Flat" means the backbone's layers sit directly in the returned model, so any conv layer
can be a Grad-CAM target by name. TensorFlow/Keras are imported lazily: importing this
module must not pull TensorFlow into the GUI process before the window is shown.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxrviewer.core.model.intensity import INTENSITY_MODES, histogram_equalisation_layer

if TYPE_CHECKING:
    import keras

BACKBONES = ("densenet121", "densenet169", "densenet201")
DEFAULT_CAM_LAYER = "relu"  # DenseNet's last activation (after the final BatchNorm)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _backbone_factory(name: str) -> Any:
    import keras

    factories = {
        "densenet121": keras.applications.DenseNet121,
        "densenet169": keras.applications.DenseNet169,
        "densenet201": keras.applications.DenseNet201,
    }
    if name not in factories:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return factories[name]


def build_classifier(
    n_classes: int,
    input_size: int = 224,
    backbone: str = "densenet121",
    weights: str | Path | None = None,
    dropout: float = 0.3,
    intensity: str = "none",
) -> keras.Model:
    """Return an uncompiled classifier taking (input_size, input_size, 1) gray 0–255 input.

    `intensity`: "none", or "equalise" for per-image histogram equalisation as the graph's first
    step (`core.model.intensity`).

    `weights`: None trains from scratch; a path loads a local no-top weights file (e.g.
    the Keras DenseNet121 `..._notop.h5`) or the backbone of a trained `.keras` classifier
    of the same backbone (transfer from one of our own models); "imagenet" asks Keras,
    which needs a network.
    """
    import keras

    if weights not in (None, "none", "imagenet") and str(weights).endswith(".keras"):
        model = build_classifier(n_classes, input_size, backbone, None, dropout, intensity)
        copy_backbone_weights(Path(weights), model)
        return model

    gray, normalised = input_stem(input_size, intensity)
    backbone_weights = None if weights in (None, "none") else str(weights)
    base = _backbone_factory(backbone)(
        include_top=False, weights=backbone_weights, input_tensor=normalised
    )
    return keras.Model(gray, classifier_head(base.output, n_classes, dropout), name=f"cxr_{backbone}")


def input_stem(input_size: int, intensity: str = "none") -> tuple[Any, Any]:
    """(input, normalised): gray 0–255 in, optionally equalised, replicated to RGB and ImageNet-normalised.

    The one place the model's own preprocessing is defined: every classifier (the DenseNet,
    the tiny test and benchmark models) starts with these layers and names.
    """
    import keras

    if intensity not in INTENSITY_MODES:
        raise ValueError(f"unknown intensity standardisation {intensity!r}; choose one of {', '.join(INTENSITY_MODES)}")
    gray = keras.Input((input_size, input_size, 1), name="image")
    stem = histogram_equalisation_layer()(name="equalise")(gray) if intensity == "equalise" else gray
    rgb = keras.layers.Concatenate(name="gray_to_rgb")([stem, stem, stem])
    scaled = keras.layers.Rescaling(1.0 / 255.0, name="to_unit")(rgb)
    normalised = keras.layers.Normalization(
        mean=list(IMAGENET_MEAN), variance=[s * s for s in IMAGENET_STD], name="imagenet_norm"
    )(scaled)
    return gray, normalised


def classifier_head(feature_map: Any, n_classes: int, dropout: float = 0.3) -> Any:
    """GAP → dropout → softmax Dense, named as the CAM code expects ("gap", "predictions")."""
    import keras

    features = keras.layers.GlobalAveragePooling2D(name="gap")(feature_map)
    features = keras.layers.Dropout(dropout, name="head_dropout")(features)
    return keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(features)


def load_keras_model(path: str | Path) -> keras.Model:
    """A saved classifier (safe mode, uncompiled); our custom layers are registered first."""
    import keras

    histogram_equalisation_layer()
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)


def model_intensity(model: keras.Model) -> str:
    """The intensity standardisation a built or loaded classifier applies ("none" or "equalise")."""
    return "equalise" if any(layer.name == "equalise" for layer in model.layers) else "none"


def backbone_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers that belong to the backbone (between input normalisation and GAP)."""
    names = [layer.name for layer in model.layers]
    start = names.index("imagenet_norm") + 1
    end = names.index("gap")
    return names[start:end]


def copy_backbone_weights(classifier_path: Path, model: keras.Model) -> None:
    """Copy the backbone's weights from a saved classifier of the same backbone into `model`.

    Layers are paired by position (Keras numbers unnamed layers such as paddings with a
    process-wide counter, so names can differ between builds); class and weight shapes
    must agree layer by layer.
    """

    source = load_keras_model(classifier_path)
    source_layers = [source.get_layer(name) for name in backbone_layer_names(source)]
    target_layers = [model.get_layer(name) for name in backbone_layer_names(model)]
    problem = f"{classifier_path.name}: its backbone does not match {model.name}"
    if len(source_layers) != len(target_layers):
        raise ValueError(f"{problem} ({len(source_layers)} vs {len(target_layers)} layers)")
    for source_layer, target_layer in zip(source_layers, target_layers):
        weights = source_layer.get_weights()
        shapes = [w.shape for w in weights]
        if type(source_layer) is not type(target_layer) or shapes != [w.shape for w in target_layer.get_weights()]:
            raise ValueError(f"{problem} (layer {target_layer.name})")
        target_layer.set_weights(weights)


def conv_layer_names(model: keras.Model) -> list[str]:
    """Layers with a 4-D output that make sense as CAM targets, last first."""
    candidates = []
    for name in backbone_layer_names(model):
        layer = model.get_layer(name)
        shape = getattr(layer, "output", None)
        if shape is not None and len(layer.output.shape) == 4 and (
            name.endswith("_concat") or name.endswith("_relu") or name == "relu" or name.endswith("_pool")
        ):
            candidates.append(name)
    return candidates[::-1]
