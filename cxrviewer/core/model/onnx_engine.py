"""The fast path: the model's forward pass in ONNX Runtime, CAM of the last block in numpy.

`cxr-train export-onnx` (trainer/onnx_export.py) writes two files beside `model.keras`:

* `model.onnx`: the Keras graph from the input to (the GAP input layer's activations,
  the pooled features), i.e. everything except the Dense head;
* `head.npz`: the Dense head (kernel, bias, activation) and the layer table the viewer's
  layer chooser shows (names and map grids), so nothing here needs TensorFlow.

Both are sha256-checked against the card's `onnx` entry before a byte is parsed.

With a GlobalAveragePooling → Dense head the gradient of class c's logit with respect to
the GAP input A[i, j, k] is kernel[k, c] / (H·W), whatever the image. So Grad-CAM,
Grad-CAM++, HiResCAM and CAM at that layer are exact from the activations and the kernel:
the same functions (`core.xai.cam`) get the same inputs TensorFlow's GradientTape
would give them. Other layers need real gradients: `ModelEngine` hands them to TensorFlow.

ONNX Runtime imports in ~0.1 s and builds a session in ~0.1 s; TensorFlow takes ~3 s to
import and ~2 s to trace a graph on a 2-core CPU (bench/run.py measures both).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.errors import InferenceError, ModelLoadError
from cxrviewer.core.model.card import ModelCard, NamedByCard, sha256_file
from cxrviewer.core.model.preprocessing import model_batch, model_input
from cxrviewer.core.types import XrayImage
from cxrviewer.core.xai.cam import CAM, METHOD_LABELS, METHODS, compute_cam

log = logging.getLogger(__name__)

ONNX_CARD_KEY = "onnx"
ONNX_FILENAME = "model.onnx"
HEAD_FILENAME = "head.npz"
# |ONNX Runtime − TensorFlow| on the same input, checked at export and in tests
PROBABILITY_TOLERANCE = 1e-4
CAM_RELATIVE_TOLERANCE = 1e-3
DISABLE_ENV = "CXRVIEWER_NO_ONNX"   # "1": always TensorFlow (diagnostics)


@dataclass(frozen=True)
class OnnxExport:
    """The card's `onnx` entry: files (relative to the model folder) and their checksums."""

    graph_file: str
    graph_sha256: str
    head_file: str
    head_sha256: str

    @classmethod
    def from_card(cls, card: ModelCard) -> OnnxExport | None:
        entry = card.extra.get(ONNX_CARD_KEY)
        if not isinstance(entry, dict):
            return None
        try:
            return cls(str(entry["file"]), str(entry["sha256"]), str(entry["head_file"]), str(entry["head_sha256"]))
        except KeyError:
            return None

    def to_card(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {"file": self.graph_file, "sha256": self.graph_sha256,
                "head_file": self.head_file, "head_sha256": self.head_sha256, **extra}


def onnx_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0")


def _verified(folder: Path, relative: str, expected: str, card: ModelCard) -> Path:
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents:
        raise ModelLoadError(f"the ONNX file of model {card.name} points outside its folder ({relative})")
    if not path.is_file():
        raise ModelLoadError(f"the ONNX file {relative} of model {card.name} is missing from {folder}")
    if sha256_file(path).lower() != expected.strip().lower():
        raise ModelLoadError(f"{relative} of model {card.name} does not match its recorded checksum (file changed or corrupt)")
    return path


def _providers(ort: Any) -> list[str]:
    """CUDA when this onnxruntime build has it (onnxruntime-gpu) and CPU is not forced, else CPU."""
    from cxrviewer.core.model.device import FORCE_CPU_ENV

    available = set(ort.get_available_providers())
    forced_cpu = os.environ.get(FORCE_CPU_ENV, "").strip() not in ("", "0")
    if "CUDAExecutionProvider" in available and not forced_cpu:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxEngine(NamedByCard):
    """Forward pass + last-block CAM for one model folder. One thread uses it at a time."""

    def __init__(self, folder: str | Path, card: ModelCard, export: OnnxExport) -> None:
        folder = Path(folder)
        graph = _verified(folder, export.graph_file, export.graph_sha256, card)
        head_path = _verified(folder, export.head_file, export.head_sha256, card)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelLoadError(f"onnxruntime is not installed ({exc})") from exc
        try:
            with np.load(head_path, allow_pickle=False) as head:
                self._kernel = np.asarray(head["kernel"], np.float32)
                self._bias = np.asarray(head["bias"], np.float32) if "bias" in head else None
                self._activation = str(head["activation"])
                self.cam_layer_for_dense_weights: str | None = str(head["gap_input_layer"])
                self.conv_layers: tuple[str, ...] = tuple(str(n) for n in head["conv_layers"])
                grids = np.asarray(head["grids"], np.int64)
        except Exception as exc:
            raise ModelLoadError(f"{export.head_file} of model {card.name} could not be read: {exc}") from exc
        if self._kernel.shape[1] != len(card.labels) or len(grids) != len(self.conv_layers):
            raise ModelLoadError(f"{export.head_file} of model {card.name} does not match its card")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # no busy-waiting between runs: on a 2-core machine the spinning threads starve the image
        # loaders (cxrviewer predict) and the GUI process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(graph), options, providers=_providers(ort))
        except Exception as exc:
            raise ModelLoadError(f"the ONNX model of {card.name} could not be loaded: {type(exc).__name__}: {exc}") from exc
        self._input_name = self._session.get_inputs()[0].name
        self.folder = folder
        self.card = card
        self.labels: tuple[str, ...] = tuple(card.labels)
        self.input_size = int(card.input_size)
        self.default_layer = card.cam_layer
        self.layer_grids: dict[str, tuple[int, int]] = {
            name: (int(rows), int(cols)) for name, (rows, cols) in zip(self.conv_layers, grids)}
        self._temperature = float(card.temperature) if card.temperature > 0 else 1.0
        self.device = "GPU" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "CPU"

    @property
    def head_activation(self) -> str:
        return self._activation

    def supports(self, layer: str | None, method: str) -> bool:
        """True when this engine alone answers a heat map at `layer` with `method`."""
        return (layer or self.default_layer) == self.cam_layer_for_dense_weights and method in METHODS

    def _as_batch(self, batch: np.ndarray) -> np.ndarray:
        return model_batch(batch, self.input_size, self.name)

    def _run(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        activations, features = self._session.run(None, {self._input_name: array})
        return activations, features

    def _probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features.astype(np.float64) @ self._kernel.astype(np.float64)
        if self._bias is not None:
            logits = logits + self._bias
        scaled = logits / self._temperature
        if self._activation == "sigmoid":
            probabilities = 1.0 / (1.0 + np.exp(-scaled))
        else:
            shifted = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        probabilities = probabilities.astype(np.float32)
        if not np.all(np.isfinite(probabilities)):
            raise InferenceError(f"model {self.name} produced invalid (non-finite) probabilities")
        return probabilities

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_classes) for a batch (N, S, S, 1) or one input (S, S, 1)."""
        return self.predict_with_features(batch)[0]

    def predict_with_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, n_classes), pooled features (N, k)) from one forward pass."""
        _, features = self._run(self._as_batch(batch))
        return self._probabilities(features), features

    def predict_many(self, inputs: np.ndarray | Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        array = self._as_batch(np.stack(list(inputs)) if not isinstance(inputs, np.ndarray) else inputs)
        chunks = [self.predict(array[start:start + batch_size]) for start in range(0, len(array), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)

    def predict_images(self, images: Sequence[XrayImage], batch_size: int = 8) -> np.ndarray:
        return self.predict_many([model_input(image, self.input_size) for image in images], batch_size)

    def features(self, batch: np.ndarray) -> np.ndarray:
        """The pooled (GAP) features (N, k) the head sees: what the out-of-distribution score measures."""
        return self._run(self._as_batch(batch))[1]

    def predict_and_cam(
        self, x: np.ndarray, class_index: int | None = None, layer: str | None = None, method: str = "gradcam",
    ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n_classes,), raw CAM (h, w) ≥ 0), exactly as the TensorFlow engine computes them."""
        probabilities, cam, _ = self.predict_cam_and_features(x, class_index, layer, method)
        return probabilities, cam

    def predict_cam_and_features(
        self, x: np.ndarray, class_index: int | None = None, layer: str | None = None, method: str = "gradcam",
        choose: Callable[[np.ndarray], int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`predict_and_cam` plus the pooled features (k,), all from one forward pass. With
        `class_index` None the map explains `choose(probabilities)` (default: the top class)."""
        if not self.supports(layer, method):
            raise InferenceError(f"{METHOD_LABELS.get(method, method)} at layer {layer} needs TensorFlow")
        array = self._as_batch(x)
        if array.shape[0] != 1:
            raise InferenceError("a heat map is computed for one image at a time")
        if class_index is not None and not 0 <= class_index < len(self.labels):
            raise InferenceError(f"class index {class_index} is out of range for {len(self.labels)} labels")
        activations, features = self._run(array)
        probabilities = self._probabilities(features)[0]
        if class_index is not None:
            chosen = int(class_index)
        else:
            chosen = int(choose(probabilities)) if choose is not None else int(np.argmax(probabilities))
        maps = activations[0].astype(np.float32)
        rows, cols = maps.shape[:2]
        gradients = None
        if method != CAM:
            # d logit_c / dA[i, j, k] = kernel[k, c] / (H·W) for GAP → Dense
            gradients = np.broadcast_to(self._kernel[:, chosen] / float(rows * cols), maps.shape).astype(np.float32)
        cam = compute_cam(method, maps, gradients, dense_kernel=self._kernel, class_index=chosen)
        return probabilities, cam, features[0]
