"""Fit, calibrate and measure a model's out-of-distribution gate (cxrviewer/core/ood_gate.py).

    cxr-train fit-ood --model resources/models/pneumonia3 [--data ../shared/data]

1. Pooled (GAP) features of every image of the model's own split (split.csv), through the
   viewer's loader, preprocessing and ONNX engine.
2. Fit on the *train* rows; threshold at the 95th percentile of the *validation* rows.
3. Measure the flag rate on the internal *test* rows (images of patients the model never
   saw) and on every external set under --data that the model did not train on
   (nih_adult_normal, covid19, adult_mixed: skipped when a source appears in the split),
   the DICOMs under ../shared/dicom, and synthetic blank, noise and pattern images.
4. Compare with two other scores calibrated the same way (k-NN distance in the same PCA
   basis, energy of the logits) and record all three in the card (`ood.candidates`).
5. Write ood.npz, its sha256 and the measurements into the card.
"""
from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.model.card import ModelCard, sha256_file
from cxrviewer.core.ood_gate import (
    OOD_CARD_KEY,
    OOD_FILENAME,
    SHRINKAGE,
    VALIDATION_FLAG_RATE,
    OodGate,
    image_flag,
    input_flag,
)
from cxrviewer.core.types import Window, XrayImage

log = logging.getLogger(__name__)

EXTERNAL_SETS = ("nih_adult_normal", "covid19", "adult_mixed")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def synthetic_images() -> list[XrayImage]:
    """Blank, noise and pattern images: none is a radiograph; every one must be flagged."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[-256:256, -256:256]
    arrays = {
        "black": np.zeros((512, 512)), "white": np.full((512, 512), 255.0), "gray": np.full((512, 512), 128.0),
        "uniform_noise": rng.uniform(0, 255, (512, 512)),
        "gaussian_noise": np.clip(rng.normal(128, 40, (512, 512)), 0, 255),
        "gradient": np.tile(np.linspace(0, 255, 512), (512, 1)),
        "checkerboard": ((rows // 32 + cols // 32) % 2) * 255.0,
        "rings": np.hypot(rows, cols) % 64 * 4,
        "nan": np.full((512, 512), np.nan),
    }
    return [XrayImage(Path(f"{name}.png"), name, a.astype(np.float32), Window(127.5, 255.0), (), "MONOCHROME2")
            for name, a in arrays.items()]


class _Extractor:
    """Features, logits and image-check flags of images through the viewer's own path."""

    def __init__(self, folder: Path) -> None:
        from cxrviewer.core.model.engine import ModelEngine

        self.engine = ModelEngine.open(folder)
        if self.engine.features(np.zeros((1, self.engine.input_size, self.engine.input_size, 1), np.float32)) is None:
            raise ValueError(f"model {self.engine.name} has no ONNX export: run cxr-train export-onnx first")

    def image(self, image: XrayImage) -> tuple[np.ndarray, str]:
        from cxrviewer.core.model.engine import prepare_input

        if image.pixels.size == 0:
            return np.full(self._width(), np.nan, np.float32), image_flag(image)
        item = prepare_input(image, self.engine.input_size)     # as the viewer: image checks + input
        return self.engine.features(item.x)[0], item.flag or input_flag(item.x)

    def _width(self) -> int:
        size = self.engine.input_size
        return int(self.engine.features(np.zeros((1, size, size, 1), np.float32)).shape[1])

    def paths(self, paths: list[Path]) -> tuple[np.ndarray, list[str], list[str]]:
        from cxrviewer.core.io import load_image

        features, flags, names = [], [], []
        for path in paths:
            try:
                image = load_image(path)
            except Exception as exc:  # unreadable files are not measured
                log.warning("skipped %s: %s", path, exc)
                continue
            vector, flag = self.image(image)
            features.append(vector)
            flags.append(flag)
            names.append(str(path))
        width = features[0].shape[0] if features else 1
        return (np.stack(features) if features else np.zeros((0, width), np.float32)), flags, names

    def logits(self, features: np.ndarray) -> np.ndarray:
        fast = self.engine._fast   # the Dense head in numpy: kernel and bias
        logits = np.nan_to_num(features.astype(np.float64)) @ fast._kernel.astype(np.float64)
        return logits + (fast._bias if fast._bias is not None else 0.0)


def _split_rows(folder: Path, data: Path) -> dict[str, list[tuple[str, Path, str]]]:
    rows: dict[str, list[tuple[str, Path, str]]] = {}
    with open(folder / "split.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["split"], []).append((row["label"], data / row["path"], row.get("source", "")))
    return rows


def _knn_scores(train: np.ndarray, queries: np.ndarray, gate: OodGate, k: int = 10) -> np.ndarray:
    from cxrviewer.core.ood_gate import _transform

    z_train = (_transform(train) - gate.mean) @ gate.basis
    z = (_transform(np.nan_to_num(queries)) - gate.mean) @ gate.basis
    scores = []
    for start in range(0, len(z), 256):
        block = z[start:start + 256]
        d = np.sqrt(np.maximum(((block[:, None, :] - z_train[None, :, :]) ** 2).sum(-1), 0))
        scores.append(np.sort(d, axis=1)[:, min(k, d.shape[1]) - 1])
    return np.concatenate(scores) if scores else np.zeros(0)


def _energy(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))   # higher = less like training


def _rate(flags: np.ndarray) -> float:
    return float(np.mean(flags)) if len(flags) else math.nan


def fit_ood(folder: str | Path, data: str | Path, dicom_dir: str | Path | None = None) -> ModelCard:
    """Fit and measure the gate of a model folder; writes ood.npz and the card; returns the card."""
    from cxrviewer.core.model.runtime import read_card

    folder, data = Path(folder), Path(data)
    card = read_card(folder)
    extractor = _Extractor(folder)
    rows = _split_rows(folder, data)
    for needed in ("train", "val"):
        if not rows.get(needed):
            raise ValueError(f"{folder / 'split.csv'} has no {needed} rows")
    measured: dict[str, dict[str, Any]] = {}

    def features_of(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        items = [item for item in rows.get(split, []) if item[1].is_file()]
        vectors, flags, names = extractor.paths([path for _, path, _ in items])
        labels = np.array([label for label, path, _ in items if str(path) in set(names)])
        return vectors, labels, flags

    train, train_labels, _ = features_of("train")
    val, _, val_flags = features_of("val")
    keep = np.isfinite(train).all(axis=1)
    gate = OodGate.fit(train[keep], train_labels[keep], val)
    sources_trained = {source for _, _, source in rows.get("train", [])} | {
        path.relative_to(data).parts[0] for _, path, _ in rows.get("train", []) if data in path.parents}

    sets: dict[str, tuple[np.ndarray, list[str]]] = {"internal validation (calibration)": (val, val_flags)}
    if rows.get("test"):
        test, _, test_flags = features_of("test")
        sets["internal test"] = (test, test_flags)
    for name in EXTERNAL_SETS:
        root = data / name
        if not root.is_dir() or name in sources_trained:
            continue
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        vectors, flags, _ = extractor.paths(paths)
        sets[name] = (vectors, flags)
    dicom_dir = Path(dicom_dir) if dicom_dir else data.parent / "dicom"
    if dicom_dir.is_dir():
        vectors, flags, names = extractor.paths(sorted(dicom_dir.glob("*.dcm")))
        for vector, flag, name in zip(vectors, flags, names):
            sets[f"dicom {Path(name).stem}"] = (vector[None], [flag])
    synthetic = [extractor.image(image) for image in synthetic_images()]
    sets["synthetic blank, noise and patterns"] = (np.stack([v for v, _ in synthetic]), [f for _, f in synthetic])

    candidates: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "mahalanobis": gate.scores,
        "knn10": lambda q: _knn_scores(train[keep], q, gate),
        "energy": lambda q: _energy(extractor.logits(q)),
    }
    thresholds = {name: float(np.quantile(score(val), 1 - VALIDATION_FLAG_RATE)) for name, score in candidates.items()}
    table: dict[str, dict[str, float]] = {name: {} for name in candidates}
    for set_name, (vectors, flags) in sets.items():
        checked = np.array([bool(f) for f in flags])
        for name, score in candidates.items():
            values = score(vectors) if len(vectors) else np.zeros(0)
            flagged = checked | ~np.isfinite(values) | (values > thresholds[name])
            table[name][set_name] = round(_rate(flagged), 3)
        measured[set_name] = {"images": int(len(flags)), "flagged": round(table["mahalanobis"][set_name], 3),
                              "flagged_by_image_checks": round(_rate(checked), 3)}

    gate.save(folder / OOD_FILENAME)
    entry = {
        "file": OOD_FILENAME,
        "sha256": sha256_file(folder / OOD_FILENAME),
        "method": "Mahalanobis distance of the pooled (GAP) features, log(1 + 10 f), to the nearest "
                  f"training-class mean (shared covariance, shrinkage {SHRINKAGE}, {gate.basis.shape[1]} principal "
                  "components), "
                  "plus image checks (non-finite, blank, colour, tiny, extreme shape, lateral, non-chest DICOM)",
        "feature_layer": "gap (global average pooling of the last dense block, the Dense head's input)",
        "threshold": round(gate.threshold, 4),
        "calibration": f"the {100 * (1 - VALIDATION_FLAG_RATE):.0f}th percentile of the scores of the model's own "
                       "validation split (about 5 % of validation images flagged)",
        "flag_rates": measured,
        "candidates": {"flag rate per set at a 5 % validation flag rate": table},
        "how_chosen": "Mahalanobis, k-NN and energy were compared on the sets above; the feature transform, "
                      "number of components and shrinkage were chosen on the same sets (16-512 components, "
                      "shrinkage 0.01-0.3, no transform / sqrt / log), so these flag rates are optimistic for "
                      "new data: the held-back adult and pediatric test sets are the honest check. Energy "
                      "flagged under 10 % of adults: the logits of a confident pediatric model do not notice "
                      "adults.",
    }
    card = replace(card, extra={**card.extra, OOD_CARD_KEY: entry})
    card.write(folder)
    return card
