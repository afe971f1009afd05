"""The out-of-distribution gate: is this image like the ones the model was trained on?

Two parts, both explainable to a trainee:

* **Image checks** that need no model (`image_flag`): non-finite pixel values, a blank or
  constant image, a colour image, a tiny image, an extreme aspect ratio, a lateral view
  (DICOM ViewPosition), a DICOM that is not a chest radiograph (BodyPartExamined, Modality).
* **A feature-distance score** (`OodGate.score`): the Mahalanobis distance of the model's
  pooled (GAP) features to the nearest class mean of its training split, with one shared,
  shrunk covariance (Lee et al., NeurIPS 2018), in a PCA basis of the training features.
  Fitted when a model is exported (`trainer/ood_fit.py`), stored beside the weights
  (`ood.npz`, sha256 in the card), thresholded so that about 5 % of the model's own
  validation images are flagged. Why this score and not k-NN or energy: the measurements
  in the card (`ood.candidates`).

A flagged image gets no call and no heat map by default in the viewer; `predict --json`
reports the verdict on every line.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import ModelLoadError
from cxrviewer.core.model.card import ModelCard, sha256_file
from cxrviewer.core.types import OodVerdict, XrayImage

OOD_CARD_KEY = "ood"
OOD_FILENAME = "ood.npz"
VALIDATION_FLAG_RATE = 0.05
SHRINKAGE = 0.01               # covariance ← (1 − s)·Σ + s·mean(diag Σ)·I
COMPONENTS = 256
BLANK_STD = 2.0                # gray levels (0–255 display) below which an image is "blank"
MIN_SIDE_PX = 64
MAX_FLAG_ASPECT = 2.5          # long side / short side beyond which no chest film looks like this
LATERAL_VIEWS = frozenset({"LAT", "LL", "RL", "LATERAL", "LLD", "RLD"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "CHEST_LUNG"})
RADIOGRAPHY_MODALITIES = frozenset({"CR", "DX"})


# ------------------------------------------------------------------------- image checks

def image_flag(image: XrayImage) -> str:
    """Why this image cannot be a frontal chest radiograph like the training images, or ""."""
    pixels = np.asarray(image.pixels)
    if pixels.size == 0:
        return "the image is empty"
    finite = np.isfinite(pixels)
    if not finite.all():
        share = 1.0 - float(finite.mean())
        return f"{share:.0%} of its pixel values are not numbers (NaN or infinite)"
    height, width = image.shape
    if min(height, width) < MIN_SIDE_PX:
        return f"it is tiny ({width}×{height} pixels); radiographs are hundreds of pixels across"
    ratio = max(height, width) / max(min(height, width), 1)
    if ratio > MAX_FLAG_ASPECT:
        return f"its shape ({width}×{height}, {ratio:.1f}:1) is unlike any chest film"
    photometric = str(image.metadata.get("PhotometricInterpretation", image.photometric)).upper()
    coloured = any("colour" in note.lower() or "color" in note.lower() for note in image.notes)
    if coloured or (photometric and not photometric.startswith("MONOCHROME")):
        return "it is a colour image; radiographs are grayscale"
    view = str(image.metadata.get("ViewPosition", "") or "").strip().upper()
    if view in LATERAL_VIEWS:
        return f"it is a lateral view ({view}); the model saw frontal views only"
    body = str(image.metadata.get("BodyPartExamined", "") or "").strip().upper()
    if body and body not in CHEST_BODY_PARTS:
        return f"its header says body part {body.title()}, not chest"
    modality = str(image.metadata.get("Modality", "") or "").strip().upper()
    if modality and modality not in RADIOGRAPHY_MODALITIES:
        return f"its header says modality {modality}, not a radiograph (CR/DX)"
    return ""


def input_flag(x: np.ndarray) -> str:
    """Checks on the model input itself (0–255 display gray levels): blank or constant."""
    values = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        return "its pixel values are not numbers (NaN or infinite)"
    if float(values.std()) < BLANK_STD:
        return f"it is blank (one gray level, {float(values.mean()):.0f}, almost everywhere)"
    return ""


# ------------------------------------------------------------------------- the score

def _transform(features: np.ndarray) -> np.ndarray:
    return np.log1p(10.0 * np.maximum(np.asarray(features, np.float64), 0.0))


@dataclass(frozen=True)
class OodGate:
    """Mahalanobis distance to the nearest training class mean, in a PCA basis; see the module doc."""

    mean: np.ndarray          # (d,) centre of the training features
    basis: np.ndarray         # (d, k) principal axes
    class_means: np.ndarray   # (c, k) per-class means in the basis
    precision: np.ndarray     # (k, k) inverse of the shared, shrunk covariance
    threshold: float
    method: str = "mahalanobis"
    feature_layer: str = "gap"

    def scores(self, features: np.ndarray) -> np.ndarray:
        z = (_transform(features) - self.mean) @ self.basis          # (n, k)
        distances = []
        for centre in self.class_means:
            delta = z - centre
            distances.append(np.einsum("ij,jk,ik->i", delta, self.precision, delta))
        return np.sqrt(np.maximum(np.min(np.stack(distances), axis=0), 0.0) / self.basis.shape[1])

    def score(self, features: np.ndarray) -> float:
        return float(self.scores(np.asarray(features).reshape(1, -1))[0])

    def verdict(self, features: np.ndarray, flag: str = "") -> OodVerdict:
        if flag:
            return OodVerdict(True, None, self.threshold, flag)
        value = self.score(features)
        if not math.isfinite(value) or value > self.threshold:
            return OodVerdict(True, value, self.threshold,
                              f"looks unlike its training images (score {value:.1f}, threshold {self.threshold:.1f})")
        return OodVerdict(False, value, self.threshold, "")

    # -- fitting and storage --------------------------------------------------------------
    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, validation: np.ndarray,
            components: int = COMPONENTS, flag_rate: float = VALIDATION_FLAG_RATE) -> OodGate:
        features = _transform(features)
        mean = features.mean(axis=0)
        centred = features - mean
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = vt[: min(components, vt.shape[0])].T
        z = centred @ basis
        classes = sorted(set(np.asarray(labels).tolist()))
        class_means = np.stack([z[np.asarray(labels) == c].mean(axis=0) for c in classes])
        residual = np.concatenate([z[np.asarray(labels) == c] - m for c, m in zip(classes, class_means)])
        covariance = np.cov(residual, rowvar=False)
        covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * np.mean(np.diag(covariance)) * np.eye(len(covariance))
        gate = cls(mean, basis, class_means, np.linalg.inv(covariance), threshold=math.inf)
        threshold = float(np.quantile(gate.scores(validation), 1.0 - flag_rate))
        return cls(mean, basis, class_means, gate.precision, threshold)

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, mean=self.mean.astype(np.float32), basis=self.basis.astype(np.float32),
                     class_means=self.class_means.astype(np.float32), precision=self.precision.astype(np.float32),
                     threshold=np.float64(self.threshold), method=np.array(self.method),
                     feature_layer=np.array(self.feature_layer))

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> OodGate | None:
        """The model's gate, sha256-checked; None when the card records none."""
        entry = card.extra.get(OOD_CARD_KEY)
        if not isinstance(entry, Mapping) or "file" not in entry:
            return None
        path = (Path(folder) / str(entry["file"])).resolve()
        if Path(folder).resolve() not in path.parents or not path.is_file():
            raise ModelLoadError(f"the out-of-distribution file {entry['file']} of model {card.name} is missing")
        if sha256_file(path).lower() != str(entry.get("sha256", "")).lower():
            raise ModelLoadError(f"{entry['file']} of model {card.name} does not match its recorded checksum")
        with np.load(path, allow_pickle=False) as data:
            return cls(np.asarray(data["mean"], np.float64), np.asarray(data["basis"], np.float64),
                       np.asarray(data["class_means"], np.float64), np.asarray(data["precision"], np.float64),
                       float(data["threshold"]), str(data["method"]), str(data["feature_layer"]))
