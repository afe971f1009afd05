"""Load a model folder safely and run it: batched predictions and a fused prediction + CAM.

`load_classifier` checks the weights' sha256 against the card BEFORE Keras reads a byte,
then loads with `safe_mode=True` (no arbitrary code from the file). `InferenceEngine` owns
the Keras model and the `tf.function`s built from it; it is not thread-safe — one thread
(the inference worker, or a CLI's main thread) uses it.

Probabilities come from the Dense head's logits: softmax(logits / T) with the card's
temperature T. For a softmax head this is the same as softmax(log(p) / T) of the model's
own output, without the log of a rounded probability. CAM gradients are taken with respect
to the raw logit of the class (its score), never the softmax output.

TensorFlow and Keras are imported inside functions only.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxrviewer.core.errors import InferenceError, ModelLoadError
from cxrviewer.core.model.architecture import conv_layer_names, load_keras_model
from cxrviewer.core.model.card import CARD_FILENAME, ModelCard, NamedByCard, sha256_file
from cxrviewer.core.model.preprocessing import model_batch, model_input
from cxrviewer.core.types import CamResult, MapRequest, Prediction, XrayImage
from cxrviewer.core.xai.cam import GRADCAM, METHODS, check_cam_request, compute_cam

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

_HEAD_ACTIVATIONS = ("softmax", "sigmoid")
XLA_ENV = "CXRVIEWER_XLA"


def xla_enabled() -> bool:
    """Compile the batch-1 functions with XLA unless $CXRVIEWER_XLA is "0" (bench/run.py: ~1.5×
    faster on a 2-core CPU, a few seconds more warm-up); any XLA failure falls back by itself."""
    return os.environ.get(XLA_ENV, "1").strip() != "0"


@dataclass(frozen=True)
class LoadedModel:
    """A verified card plus the Keras model loaded from its weights."""

    folder: Path
    card: ModelCard
    model: keras.Model

    @property
    def name(self) -> str:
        return self.card.name


def read_card(folder: str | Path) -> ModelCard:
    """The card of a model folder, or ModelLoadError saying what is wrong with it."""
    folder = Path(folder)
    if not (folder / CARD_FILENAME).is_file():
        raise ModelLoadError(f"the model folder {folder} has no {CARD_FILENAME}")
    try:
        return ModelCard.read(folder)
    except Exception as exc:
        raise ModelLoadError(f"the model card {folder / CARD_FILENAME} could not be read: {exc}") from exc


def verify_weights(folder: str | Path, card: ModelCard) -> Path:
    """Path of the card's weights file after checking it exists, stays inside the folder and matches its sha256."""
    folder = Path(folder).resolve()
    weights = (folder / card.weights_file).resolve()
    if folder not in weights.parents:
        raise ModelLoadError(f"the weights file of model {card.name} points outside its folder ({card.weights_file})")
    if not weights.is_file():
        raise ModelLoadError(f"the weights file {card.weights_file} of model {card.name} is missing from {folder}")
    if sha256_file(weights).lower() != card.weights_sha256.strip().lower():
        raise ModelLoadError(
            f"weights of model {card.name} do not match their recorded checksum (file changed or corrupt)"
        )
    return weights


def _import_keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ModelLoadError(f"Keras uses the {keras.backend.backend()!r} backend; the viewer needs TensorFlow")
    return keras


def _check_model(model: Any, card: ModelCard) -> None:
    """Raise ModelLoadError when the card does not describe the loaded model."""
    keras = _import_keras()
    shape = tuple(model.input_shape)
    expected = (card.input_size, card.input_size, 1)
    if len(shape) != 4 or tuple(shape[1:]) != expected:
        raise ModelLoadError(f"model {card.name} takes input {shape[1:]}, its card says {expected}")
    n_outputs = int(model.output_shape[-1])
    if n_outputs != len(card.labels):
        raise ModelLoadError(f"model {card.name} has {n_outputs} outputs but its card lists {len(card.labels)} labels")
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ModelLoadError(f"model {card.name} does not end in a Dense layer; the viewer cannot compute class scores")
    if keras.activations.serialize(head.activation) not in _HEAD_ACTIVATIONS:
        raise ModelLoadError(f"model {card.name} does not end in a softmax or sigmoid layer")
    names = {layer.name for layer in model.layers}
    if card.cam_layer not in names:
        raise ModelLoadError(f"the CAM layer {card.cam_layer!r} of model {card.name} is not in the model")


def load_classifier(folder: str | Path) -> LoadedModel:
    """Verify and load a model folder. Every failure is a ModelLoadError naming the model."""
    folder = Path(folder)
    card = read_card(folder)
    weights = verify_weights(folder, card)
    _import_keras()   # the backend check, before Keras reads the file
    try:
        model = load_keras_model(weights)
    except Exception as exc:
        log.exception("loading model %s from %s failed", card.name, weights)
        raise ModelLoadError(f"model {card.name} could not be loaded: {type(exc).__name__}: {exc}") from exc
    _check_model(model, card)
    return LoadedModel(folder=folder, card=card, model=model)


def image_key(image: XrayImage) -> str:
    """Identifies one frame of one file, so an overlay can be matched to its image."""
    identity = image.sha256 or str(image.path)
    return f"{identity}#{image.frame_index}"


def _gap_input_layer(model: Any) -> str | None:
    """Name of the layer whose output feeds the GlobalAveragePooling2D head (CAM's layer)."""
    import keras

    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            source = layer.input
            for candidate in model.layers[:index]:
                if candidate.output is source:
                    return candidate.name
            return model.layers[index - 1].name if index > 0 else None
    return None


def _cam_layers(model: Any, preferred: str) -> tuple[str, ...]:
    """CAM-able layers, last first, with the card's layer guaranteed first."""
    try:
        names = conv_layer_names(model)
    except ValueError:  # not laid out like build_classifier: take every 4-D layer
        names = [layer.name for layer in model.layers if len(layer.output.shape) == 4][::-1]
    ordered = [preferred] + [name for name in names if name != preferred]
    return tuple(ordered)


def _layer_grids(model: Any, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(rows, columns) of each layer's output: the grid its heat map is drawn on."""
    grids: dict[str, tuple[int, int]] = {}
    for name in names:
        shape = tuple(model.get_layer(name).output.shape)
        if len(shape) == 4 and isinstance(shape[1], int) and isinstance(shape[2], int):
            grids[name] = (shape[1], shape[2])
    return grids


class InferenceEngine(NamedByCard):
    """Owns a loaded model and its traced `tf.function`s. Use from ONE thread only."""

    def __init__(self, loaded: LoadedModel, xla: bool | None = None, trace_lazily: bool = False) -> None:
        """`xla` None follows $CXRVIEWER_XLA. `trace_lazily`: a layer's first heat map runs eagerly
        (~0.6 s, no tracing) and its graph is traced later by `trace_pending()` (the worker's idle time)."""
        import tensorflow as tf

        keras = _import_keras()
        self._tf = tf
        self._keras = keras
        self.loaded = loaded
        self.card = loaded.card
        model = loaded.model
        self._model = model
        head = model.layers[-1]
        self._head_activation = keras.activations.serialize(head.activation)
        self._kernel = head.kernel
        self._bias = head.bias
        self._kernel_numpy = np.asarray(keras.ops.convert_to_numpy(head.kernel), dtype=np.float32)
        self._head_input = head.input
        self._temperature = float(self.card.temperature) if self.card.temperature > 0 else 1.0
        self.labels: tuple[str, ...] = tuple(self.card.labels)
        self.input_size: int = int(self.card.input_size)
        self.default_layer: str = self.card.cam_layer
        self.conv_layers: tuple[str, ...] = _cam_layers(model, self.card.cam_layer)
        self.layer_grids: dict[str, tuple[int, int]] = _layer_grids(model, self.conv_layers)
        self.cam_layer_for_dense_weights: str | None = _gap_input_layer(model)
        self._layer_names = {layer.name for layer in model.layers}

        features_model = keras.Model(model.inputs, head.input, name="head_features")
        size = self.input_size

        def probabilities_of(batch: Any) -> Any:
            return self._probabilities(self._logits(features_model(batch, training=False)))

        # any batch size, plain graph (an XLA program would be recompiled for every new size)
        self._predict_fn = tf.function(
            probabilities_of, input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)])
        # one image, as the viewer asks: a fixed shape that XLA compiles once
        self._xla = xla_enabled() if xla is None else bool(xla)
        self._trace_lazily = trace_lazily
        self._untraced: list[str] = []
        self._predict_one_fn = tf.function(
            probabilities_of, input_signature=[tf.TensorSpec([1, size, size, 1], tf.float32)], jit_compile=True)
        self._cam_fns: dict[str, Any] = {}
        self._eager_fns: dict[str, Any] = {}

    @property
    def head_activation(self) -> str:
        return self._head_activation

    # -- graph pieces -------------------------------------------------------------------
    def _logits(self, features: Any) -> Any:
        """The Dense head's pre-activation: features @ kernel + bias (the class scores)."""
        tf = self._tf
        logits = tf.matmul(tf.cast(features, tf.float32), tf.cast(self._kernel, tf.float32))
        if self._bias is not None:
            logits = logits + tf.cast(self._bias, tf.float32)
        return logits

    def _probabilities(self, logits: Any) -> Any:
        tf = self._tf
        scaled = logits / self._temperature
        if self._head_activation == "sigmoid":
            return tf.sigmoid(scaled)
        return tf.nn.softmax(scaled, axis=-1)

    def _cam_fn(self, layer: str, traced: bool = False) -> Any:
        """The fused prediction + activations + gradients function for `layer`: its traced graph
        when built, else (lazy tracing) the same function run eagerly."""
        fn = self._cam_fns.get(layer) or (None if traced else self._eager_fns.get(layer))
        if fn is not None:
            return fn
        tf = self._tf
        target = self._model.get_layer(layer)
        if len(target.output.shape) != 4:
            raise InferenceError(f"layer {layer} has no spatial map; choose a convolutional layer")
        sub_model = self._keras.Model(self._model.inputs, [target.output, self._head_input], name=f"cam_{layer}")
        size = self.input_size

        def fused(x: Any, class_index: Any) -> Any:
            with tf.GradientTape() as tape:
                activations, features = sub_model(x, training=False)
                logits = self._logits(features)
                probabilities = self._probabilities(logits)
                top = tf.argmax(probabilities[0], output_type=tf.int32)
                chosen = tf.where(class_index < 0, top, class_index)
                score = tf.gather(logits[0], chosen)
            gradients = tape.gradient(score, activations)
            return probabilities[0], chosen, activations[0], gradients[0]

        if self._trace_lazily and not traced:
            if layer not in self._untraced:
                self._untraced.append(layer)
            self._eager_fns[layer] = fused
            return fused   # eager: no trace now, `trace_pending` builds the graph later
        graph = tf.function(fused, input_signature=[
            tf.TensorSpec([1, size, size, 1], tf.float32), tf.TensorSpec([], tf.int32),
        ], jit_compile=self._xla)
        self._cam_fns[layer] = graph
        return graph

    @property
    def has_untraced(self) -> bool:
        return bool(self._untraced)

    def trace_pending(self) -> bool:
        """Trace the graph of one layer that has so far run eagerly; False when none is left."""
        if not self._untraced:
            return False
        layer = self._untraced.pop(0)
        size = self.input_size
        zeros = self._tf.constant(np.zeros((1, size, size, 1), np.float32))
        self._without_xla_on_failure(
            lambda: self._cam_fn(layer, traced=True)(zeros, self._tf.constant(-1, self._tf.int32)))
        self._eager_fns.pop(layer, None)
        return True

    def _without_xla_on_failure(self, call: Any) -> Any:
        """Run `call()`; if it fails while XLA is on (a platform without XLA), retry once with plain graphs for good."""
        try:
            return call()
        except InferenceError:
            raise
        except Exception as exc:  # noqa: BLE001 - XLA raises assorted errors; a real one recurs below
            if not self._xla:
                raise
            log.warning("XLA compilation failed (%s: %s); model %s runs without XLA", type(exc).__name__, exc, self.name)
            self._xla = False
            self._cam_fns.clear()
            return call()

    # -- public API -----------------------------------------------------------------------
    def warm_up(self) -> None:
        """Trace the prediction and the default layer's CAM function once (first call is slow)."""
        zeros = np.zeros((1, self.input_size, self.input_size, 1), np.float32)
        self.predict(zeros)
        self.predict_and_cam(zeros[0], layer=self.default_layer, method=GRADCAM)

    def _as_batch(self, batch: np.ndarray) -> np.ndarray:
        return model_batch(batch, self.input_size, self.name)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_classes) for a batch (N, S, S, 1) or one input (S, S, 1) → (1, n_classes)."""
        return self._predict(self._as_batch(batch), one_image_xla=True)

    def _predict(self, array: np.ndarray, one_image_xla: bool) -> np.ndarray:
        tensor = self._tf.constant(array)
        probabilities = self._without_xla_on_failure(
            lambda: (self._predict_one_fn if one_image_xla and self._xla and len(array) == 1
                     else self._predict_fn)(tensor)
        ).numpy()
        if not np.all(np.isfinite(probabilities)):
            raise InferenceError(f"model {self.name} produced invalid (non-finite) probabilities")
        return probabilities

    def predict_many(self, inputs: np.ndarray | Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """Probabilities for many model inputs, `batch_size` at a time (e.g. a folder of images)."""
        array = self._as_batch(np.stack(list(inputs)) if not isinstance(inputs, np.ndarray) else inputs)
        # never the one-image XLA program: a last chunk of one must not cost a compilation
        chunks = [self._predict(array[start:start + batch_size], one_image_xla=False)
                  for start in range(0, len(array), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def predict_images(self, images: Sequence[XrayImage], batch_size: int = 8) -> np.ndarray:
        """Probabilities for radiographs, through the one shared preprocessing function."""
        return self.predict_many([model_input(image, self.input_size) for image in images], batch_size)

    def check_cam_request(self, layer: str | None, method: str, class_index: int | None) -> str:
        """Validate a CAM request; returns the layer to use."""
        layer = layer or self.default_layer
        if method in METHODS and layer not in self._layer_names:
            raise InferenceError(f"model {self.name} has no layer named {layer!r}")
        check_cam_request(method, layer, class_index, len(self.labels), self.cam_layer_for_dense_weights)
        return layer

    def predict_and_cam(
        self,
        x: np.ndarray,
        class_index: int | None = None,
        layer: str | None = None,
        method: str = GRADCAM,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One fused pass: (probabilities (n_classes,), raw CAM (h, w) float32 >= 0).

        `class_index` None explains the top class (argmax of the returned probabilities);
        `layer` None uses the card's CAM layer.
        """
        layer = self.check_cam_request(layer, method, class_index)
        array = self._as_batch(x)
        if array.shape[0] != 1:
            raise InferenceError("a heat map is computed for one image at a time")
        tf = self._tf
        inputs = (tf.constant(array), tf.constant(-1 if class_index is None else int(class_index), tf.int32))
        probabilities, chosen, activations, gradients = self._without_xla_on_failure(
            lambda: self._cam_fn(layer)(*inputs)
        )
        probabilities = probabilities.numpy()
        if not np.all(np.isfinite(probabilities)):
            raise InferenceError(f"model {self.name} produced invalid (non-finite) probabilities")
        cam = compute_cam(
            method,
            activations.numpy().astype(np.float32),
            None if gradients is None else gradients.numpy().astype(np.float32),
            dense_kernel=self._kernel_numpy,
            class_index=int(chosen.numpy()),
        )
        return probabilities, cam


InferenceRequest = MapRequest[XrayImage]   # a prediction for a radiograph, plus a heat map unless `method` is None


def run_request(engine: Any, request: InferenceRequest) -> tuple[Prediction, CamResult | None]:
    """Run one request end to end (preprocess → model → CAM) and package frozen results.

    `engine`: an InferenceEngine or a ModelEngine (core.model.engine)."""
    from cxrviewer.core.model.engine import prepare_input, run_on_input

    item = prepare_input(request.item, engine.input_size)
    return run_on_input(engine, request.request_id, item, request.class_index, request.method, request.layer)
