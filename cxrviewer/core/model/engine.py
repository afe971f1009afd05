"""The one model engine every caller uses: the viewer's worker process, `predict`,
`render --overlay`, `screenshot` and `selftest`.

ONNX Runtime answers what it can (probabilities; every heat-map method at the layer that
feeds global average pooling, exact there); TensorFlow is loaded only when something needs
real gradients (another layer, the sanity check) or when the folder has no ONNX export.
`preload_tensorflow()` lets the worker load it in the background after its first answer,
so a later layer change does not wait for a 3 s import.

Thread use: one thread calls the predict methods; `preload_tensorflow` may run on another
(the TensorFlow engine is built under a lock and only handed over when complete).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxrviewer.core.errors import ModelLoadError
from cxrviewer.core.model.card import ModelCard, NamedByCard
from cxrviewer.core.model.onnx_engine import OnnxEngine, OnnxExport, onnx_disabled
from cxrviewer.core.model.preprocessing import model_input
from cxrviewer.core.types import CamResult, OodVerdict, Prediction, XrayImage, readonly
from cxrviewer.core.xai.cam import GRADCAM, check_cam_request

if TYPE_CHECKING:
    from cxrviewer.core.model.runtime import InferenceEngine, LoadedModel

log = logging.getLogger(__name__)

ONNX_RUNTIME = "ONNX Runtime"
TENSORFLOW = "TensorFlow"


@dataclass(frozen=True)
class ModelInput:
    """One preprocessed image as the model takes it: what crosses into the worker process."""

    image_key: str
    x: np.ndarray          # (S, S, 1) float32, from core.model.preprocessing.model_input
    flag: str = ""         # why the radiograph itself is out of distribution (core.ood_gate.image_flag)


def prepare_input(image: XrayImage, input_size: int) -> ModelInput:
    """The one way a radiograph becomes a model input: preprocessing plus the image checks."""
    from cxrviewer.core.model.runtime import image_key
    from cxrviewer.core.ood_gate import image_flag

    flag = image_flag(image)
    if not np.all(np.isfinite(image.pixels)) and flag:
        # NaN/inf pixels have no display; the model still gets a defined (blank) input
        x = np.zeros((input_size, input_size, 1), np.float32)
    else:
        x = model_input(image, input_size)
    return ModelInput(image_key(image), x, flag)


class ModelEngine(NamedByCard):
    """A model folder behind one interface, ONNX Runtime first, TensorFlow when needed."""

    def __init__(self, folder: Path, card: ModelCard, fast: OnnxEngine | None, tf_options: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.card = card
        self._fast = fast
        self._tf: InferenceEngine | None = None
        self._tf_lock = threading.Lock()
        self._tf_error: ModelLoadError | None = None
        self._tf_options = dict(tf_options or {})
        if fast is None:
            self._load_tensorflow()
        reference = fast if fast is not None else self._tf
        assert reference is not None
        self.labels: tuple[str, ...] = tuple(card.labels)
        self.input_size = int(card.input_size)
        self.default_layer = card.cam_layer
        self.conv_layers: tuple[str, ...] = tuple(reference.conv_layers)
        self.layer_grids: dict[str, tuple[int, int]] = dict(reference.layer_grids)
        self.cam_layer_for_dense_weights: str | None = reference.cam_layer_for_dense_weights
        from cxrviewer.core.ood_gate import OodGate

        self.ood_gate = OodGate.load(folder, card) if fast is not None else None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, use_onnx: bool = True, **tf_options: Any) -> ModelEngine:
        """Verify and open a model folder: ONNX when exported (and `use_onnx`), else TensorFlow now."""
        from cxrviewer.core.model.runtime import read_card, verify_weights

        folder = Path(folder)
        card = read_card(folder)
        verify_weights(folder, card)
        fast = None
        export = OnnxExport.from_card(card)
        if use_onnx and export is not None and not onnx_disabled():
            try:
                fast = OnnxEngine(folder, card, export)
            except ModelLoadError as exc:
                if "checksum" in str(exc) or "outside" in str(exc):
                    raise   # a tampered file is an error, not a reason to fall back
                log.warning("%s; using TensorFlow for model %s", exc, card.name)
        return cls(folder, card, fast, tf_options)

    @property
    def runtime(self) -> str:
        return ONNX_RUNTIME if self._fast is not None else TENSORFLOW

    @property
    def device(self) -> str:
        if self._fast is not None:
            return self._fast.device
        from cxrviewer.core.model.device import configure_devices

        return configure_devices().label

    @property
    def head_activation(self) -> str:
        """"softmax" or "sigmoid": whether the probabilities add up to one."""
        if self._fast is not None:
            return self._fast.head_activation
        return self.tensorflow().head_activation

    @property
    def tensorflow_loaded(self) -> bool:
        return self._tf is not None

    def _load_tensorflow(self) -> InferenceEngine:
        with self._tf_lock:
            if self._tf is not None:
                return self._tf
            if self._tf_error is not None:
                raise self._tf_error
            from cxrviewer.core.model.device import configure_devices
            from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

            configure_devices()
            try:
                self._tf = InferenceEngine(load_classifier(self.folder), **self._tf_options)
            except ModelLoadError as exc:
                self._tf_error = exc
                raise
            return self._tf

    def tensorflow(self) -> InferenceEngine:
        """The TensorFlow engine (gradients at any layer, weight randomisation), loaded on first use."""
        return self._load_tensorflow()

    def preload_tensorflow(self) -> None:
        """Load TensorFlow now (e.g. on a background thread); failures are kept for the first real use."""
        try:
            self._load_tensorflow()
        except Exception:  # reported when a request needs it
            log.warning("TensorFlow preload of model %s failed", self.name, exc_info=True)

    @property
    def loaded(self) -> LoadedModel:
        return self.tensorflow().loaded

    @property
    def has_untraced(self) -> bool:
        return self._tf is not None and self._tf.has_untraced

    def trace_pending(self) -> bool:
        """Idle work: trace one graph a layer so far ran eagerly (False when there is none)."""
        return self._tf is not None and self._tf.trace_pending()

    # -- inference ------------------------------------------------------------------------
    def warm_up(self) -> None:
        zeros = np.zeros((1, self.input_size, self.input_size, 1), np.float32)
        self.predict(zeros)
        self.predict_and_cam(zeros[0], layer=self.default_layer, method=GRADCAM)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._fast.predict(batch) if self._fast is not None else self.tensorflow().predict(batch)

    def predict_many(self, inputs: np.ndarray | Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        engine = self._fast if self._fast is not None else self.tensorflow()
        return engine.predict_many(inputs, batch_size)

    def predict_images(self, images: Sequence[XrayImage], batch_size: int = 8) -> np.ndarray:
        return self.predict_many([model_input(image, self.input_size) for image in images], batch_size)

    def features(self, batch: np.ndarray) -> np.ndarray | None:
        """Pooled features (N, k) from the fast path; None without an ONNX export."""
        return self._fast.features(batch) if self._fast is not None else None

    def ood_verdict(self, x: np.ndarray, flag: str = "") -> OodVerdict | None:
        """The gate's verdict for a model input (`flag`: the image checks' reason, if any)."""
        from cxrviewer.core.ood_gate import input_flag

        flag = flag or input_flag(x)
        gate = self.ood_gate
        if gate is None:
            return OodVerdict(True, None, None, flag) if flag else None
        features = self._fast.features(x) if self._fast is not None else None
        return gate.verdict(features, flag) if features is not None else None

    def predict_with_ood(self, batch: np.ndarray, flags: Sequence[str]) -> tuple[np.ndarray, list[OodVerdict | None]]:
        """Probabilities and the gate's verdicts for a batch, from one forward pass when ONNX runs it."""
        from cxrviewer.core.ood_gate import input_flag

        batch = np.asarray(batch, np.float32)
        flags = [flag or input_flag(x) for flag, x in zip(flags, batch)]
        if self._fast is None:
            return self.predict(batch), [OodVerdict(True, None, None, f) if f else None for f in flags]
        probabilities, features = self._fast.predict_with_features(batch)
        gate = self.ood_gate
        verdicts = [gate.verdict(f, flag) if gate is not None else (OodVerdict(True, None, None, flag) if flag else None)
                    for f, flag in zip(features, flags)]
        return probabilities, verdicts

    def called_class(self, probabilities: np.ndarray) -> int:
        """The index of the class the model calls by its card's rule (core/model_call.py)."""
        from cxrviewer.core.model_call import model_call

        call = model_call(self.labels, [float(p) for p in probabilities], self.card.operating_threshold)
        return self.labels.index(call.label)

    def predict_cam_and_ood(
        self, item: ModelInput, class_index: int | None, layer: str | None, method: str,
    ) -> tuple[np.ndarray, np.ndarray, OodVerdict | None, int]:
        """Probabilities, heat map, the gate's verdict and the class the map explains; one forward
        pass on the fast path. `class_index` None explains the model's CALL (the card's rule), not
        the top class: the map shown by default is the called class's."""
        layer = self.check_cam_request(layer, method, class_index)
        if self.needs_tensorflow(layer, method):
            chosen = class_index if class_index is not None else self.called_class(self.predict(item.x)[0])
            probabilities, cam = self.tensorflow().predict_and_cam(item.x, chosen, layer, method)
            return probabilities, cam, self.ood_verdict(item.x, item.flag), int(chosen)
        from cxrviewer.core.ood_gate import input_flag

        assert self._fast is not None
        chosen_box: list[int] = []

        def choose(probabilities: np.ndarray) -> int:
            chosen_box.append(self.called_class(probabilities))
            return chosen_box[-1]

        probabilities, cam, features = self._fast.predict_cam_and_features(
            item.x, class_index, layer, method, choose=choose)
        chosen = int(class_index) if class_index is not None else chosen_box[-1]
        flag = item.flag or input_flag(item.x)
        gate = self.ood_gate
        if gate is None:
            return probabilities, cam, OodVerdict(True, None, None, flag) if flag else None, chosen
        return probabilities, cam, gate.verdict(features, flag), chosen

    def needs_tensorflow(self, layer: str | None, method: str) -> bool:
        return self._fast is None or not self._fast.supports(layer, method)

    def check_cam_request(self, layer: str | None, method: str, class_index: int | None) -> str:
        """Validate a heat-map request; returns the layer to use."""
        layer = layer or self.default_layer
        check_cam_request(method, layer, class_index, len(self.labels), self.cam_layer_for_dense_weights)
        return layer

    def predict_and_cam(
        self, x: np.ndarray, class_index: int | None = None, layer: str | None = None, method: str = GRADCAM,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, raw map); `class_index` None explains the model's call (the card's rule)."""
        layer = self.check_cam_request(layer, method, class_index)
        if class_index is None:
            class_index = self.called_class(self.predict(x)[0])
        if not self.needs_tensorflow(layer, method):
            assert self._fast is not None
            return self._fast.predict_and_cam(x, class_index, layer, method)
        return self.tensorflow().predict_and_cam(x, class_index, layer, method)


def run_on_input(engine: ModelEngine | InferenceEngine, request_id: int, item: ModelInput, class_index: int | None,
                 method: str | None, layer: str | None) -> tuple[Prediction, CamResult | None]:
    """One request end to end on a preprocessed input, packaged as frozen results.

    `engine` is a ModelEngine or a TensorFlow InferenceEngine (same predict methods)."""
    verdict = None
    chosen = class_index
    if method is None:
        if isinstance(engine, ModelEngine):
            rows, verdicts = engine.predict_with_ood(item.x[np.newaxis], [item.flag])
            probabilities, verdict = rows[0], verdicts[0]
        else:
            probabilities = engine.predict(item.x)[0]
        cam_result = None
    else:
        if isinstance(engine, ModelEngine):
            probabilities, cam, verdict, chosen = engine.predict_cam_and_ood(item, class_index, layer, method)
        else:
            probabilities, cam = engine.predict_and_cam(item.x, class_index, layer, method)
            chosen = int(np.argmax(probabilities)) if class_index is None else int(class_index)
        cam_result = CamResult(
            request_id=request_id,
            image_key=item.image_key,
            model_name=engine.name,
            class_index=int(chosen),
            method=method,
            layer=layer or engine.default_layer,
            cam=readonly(np.ascontiguousarray(cam, dtype=np.float32)),
        )
    prediction = Prediction(
        request_id=request_id,
        image_key=item.image_key,
        model_name=engine.name,
        labels=engine.labels,
        probabilities=tuple(float(p) for p in probabilities),
        ood=verdict,
    )
    return prediction, cam_result


def open_model(name_or_folder: str, root: Path | None = None, **tf_options: Any) -> ModelEngine:
    """A registered model by name, or a model folder; "" is the default model.

    LookupError when no model matches (its message says what was found)."""
    from cxrviewer.core.model.registry import model_folder

    return ModelEngine.open(model_folder(name_or_folder, root), **tf_options)
