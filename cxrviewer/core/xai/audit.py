"""Explanation audit: does the heat map point at what the model uses, for *this* image?

Deletion and insertion curves (Petsiuk et al., RISE, BMVC 2018): the map's cells are ranked
hottest first; the deletion curve is the class probability as the hottest 0, 10, …, 100 % of
the image are replaced by a blurred copy, the insertion curve the probability as they are
put back into the blurred image. A map that points at the evidence makes the deletion curve
fall fast (small area) and the insertion curve rise fast (large area); the same curves for a
random ranking of the same cells are the reference. Plus the rank agreement (Spearman)
between Grad-CAM, Grad-CAM++ and HiResCAM at the same layer. One plain sentence says what it
means. All forward passes go through one batched call.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from cxrviewer.core.types import readonly
from cxrviewer.core.xai.sanity import spearman

STEPS = 10                 # 0 %, 10 %, …, 100 %: 11 points per curve
BLUR_FRACTION = 0.08       # Gaussian σ as a fraction of the input size
VERDICT_FRACTION = 0.2     # the sentence quotes the curves at 20 %
MIN_EFFECT = 0.02          # curve-area difference to the random map that counts as "better than chance"
FLAT_RANGE = 0.05          # a probability that moves less than this on every curve: the audit cannot tell


def _curve_area(curve: str) -> property:
    """A read-only property: the area under one of the result's curves (`AuditResult.area`)."""

    def area(result: AuditResult) -> float:
        return AuditResult.area(getattr(result, curve))

    return property(area, doc=f"Area under the {curve.replace('_', ' ')} curve, 0 to 1.")


@dataclass(frozen=True)
class AuditResult:
    class_index: int
    class_label: str
    method: str
    layer: str
    fractions: np.ndarray            # (STEPS + 1,) share of the image changed
    deletion: np.ndarray             # probability of the class as the hottest cells are blurred away
    insertion: np.ndarray            # … as they are put back into the blurred image
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    method_agreement: Mapping[str, float]   # "gradcam vs hirescam" (method ids) → Spearman ρ

    @staticmethod
    def area(curve: np.ndarray) -> float:
        return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1))) if len(curve) > 1 else float(curve[0])

    deletion_area = _curve_area("deletion")
    insertion_area = _curve_area("insertion")
    random_deletion_area = _curve_area("random_deletion")
    random_insertion_area = _curve_area("random_insertion")

    @property
    def flat(self) -> bool:
        """Blurring the image hardly moves the probability at all: the curves cannot judge the map."""
        curves = (self.deletion, self.insertion, self.random_deletion, self.random_insertion)
        return all(float(np.ptp(curve)) < FLAT_RANGE for curve in curves)

    @property
    def points_at_evidence(self) -> bool:
        """The map beats a random one on both curves, by a margin."""
        return (not self.flat
                and self.random_deletion_area - self.deletion_area >= MIN_EFFECT
                and self.insertion_area - self.random_insertion_area >= MIN_EFFECT)

    def verdict(self) -> str:
        k = int(round(VERDICT_FRACTION * STEPS))
        label, p0, share = self.class_label, float(self.deletion[0]), f"{round(VERDICT_FRACTION * 100)} %"
        sentence = (f"Removing the hottest {share} of the map changes p({label}) from {p0:.2f} "
                    f"to {self.deletion[k]:.2f}; a random {share} changes it to {self.random_deletion[k]:.2f}")
        if self.flat:
            return sentence + (" — the model hardly reacts to blurring any part of this image, so the audit "
                               "cannot tell whether the map points at its evidence.")
        if self.points_at_evidence:
            return sentence + " — the map points at what the model uses."
        return sentence + " — the map does not point at what the model uses any better than chance."


def _ranking(cam: np.ndarray, size: int) -> np.ndarray:
    """(size, size) rank of each input pixel's map cell, 0 = hottest (ties broken by position)."""
    cells = np.asarray(cam, np.float64).ravel()
    order = np.argsort(-cells, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    grid = rank.reshape(np.asarray(cam).shape).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_NEAREST)


def _curves(x: np.ndarray, blurred: np.ndarray, ranking: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for the deletion and the insertion curve of one ranking: (STEPS + 1, S, S, 1) each."""
    deletion, insertion = [], []
    for step in range(STEPS + 1):
        taken = (ranking < round(cells * step / STEPS))[..., np.newaxis]
        deletion.append(np.where(taken, blurred, x))
        insertion.append(np.where(taken, x, blurred))
    return np.stack(deletion), np.stack(insertion)


def explanation_audit(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    maps: Mapping[str, np.ndarray],
    method: str,
    class_index: int,
    class_label: str,
    layer: str,
    seed: int = 0,
) -> AuditResult:
    """Audit the map `maps[method]` of class `class_index` on model input `x` (S, S, 1).

    `predict` maps a batch (N, S, S, 1) to probabilities (N, n_classes); `maps` holds the raw
    maps of every method computed at `layer` (for the agreement)."""
    x = np.asarray(x, np.float32)
    size = x.shape[0]
    sigma = max(size * BLUR_FRACTION, 1.0)
    blurred = cv2.GaussianBlur(x[..., 0], (0, 0), sigma)[..., np.newaxis].astype(np.float32)
    cam = np.asarray(maps[method], np.float64)
    cells = cam.size
    rng = np.random.default_rng(seed)
    random_cam = rng.permutation(cells).reshape(cam.shape).astype(np.float64)
    real_del, real_ins = _curves(x, blurred, _ranking(cam, size), cells)
    rand_del, rand_ins = _curves(x, blurred, _ranking(random_cam, size), cells)
    probabilities = np.asarray(predict(np.concatenate([real_del, real_ins, rand_del, rand_ins])))[:, class_index]
    n = STEPS + 1
    agreement: dict[str, float] = {}
    names = list(maps)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            rho = spearman(maps[first], maps[second])
            agreement[f"{first} vs {second}"] = float("nan") if rho is None else float(rho)
    return AuditResult(
        class_index=class_index, class_label=class_label, method=method, layer=layer,
        fractions=readonly(np.linspace(0.0, 1.0, n)),
        deletion=readonly(probabilities[:n].copy()), insertion=readonly(probabilities[n:2 * n].copy()),
        random_deletion=readonly(probabilities[2 * n:3 * n].copy()),
        random_insertion=readonly(probabilities[3 * n:].copy()),
        method_agreement=agreement,
    )
