"""`cxr-train ablation`: recipes side by side on one run's validation split.

Every row is a trained model scored on the same validation images (never the test split, so
choosing a recipe does not spend the test set), with temperature and operating threshold
fitted on those images by the run's operating rule. Rows are what was actually trained:
on a 2-core CPU a recipe costs an hour, so the table grows across sessions.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cxrviewer.core.model.architecture import load_keras_model
from trainer import metrics as m
from trainer.config import TrainConfig
from trainer.data import read_split
from trainer.dataset import decode_samples
from trainer.operating_point import choose_threshold


@dataclass(frozen=True)
class Recipe:
    name: str            # what changed, in words
    model: str           # path of a .keras classifier
    minutes: float       # training time it took (CPU), as logged
    rule: str = ""       # operating rule; empty: the run's


@dataclass(frozen=True)
class AblationRow:
    recipe: str
    rule: str
    minutes: float
    n: int
    auc: float                       # pneumonia vs normal (pneumonia models) or target vs rest
    threshold: float
    sensitivity: float
    specificity: float
    bacterial_vs_viral_auc: float | None
    worst_shift_balanced: float | None = None   # pneumonia models: the lowest balanced accuracy at this
                                                # threshold over trainer.shift_rule.SHIFTS (clean included)


def _score(labels: Sequence[str], probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = m.pneumonia_score(probs, labels)
    if score is not None:
        return (targets != labels.index("NORMAL")).astype(int), score
    positive = labels.index("COVID-19") if "COVID-19" in labels else 0
    return (targets == positive).astype(int), probs[:, positive]


def score_recipe(recipe: Recipe, run_dir: Path, default_rule: str) -> AblationRow:

    from trainer.train import predict_images

    config = TrainConfig.load(run_dir / "config.json")
    labels = json.loads((run_dir / "labels.json").read_text())
    val = [s for s in read_split(run_dir / "split.csv") if s.split == "val"]
    targets = np.array([labels.index(s.label) for s in val])
    model = load_keras_model(recipe.model)
    size = int(model.inputs[0].shape[1])
    images = decode_samples(val, size, run_dir / "cache" / f"val_{size}.npy" if size == config.input_size else None)
    probs = predict_images(model, images)
    scaled = m.apply_temperature(probs, m.fit_temperature(probs, targets))
    truth, score = _score(labels, scaled, targets)
    rule = recipe.rule or default_rule
    threshold = choose_threshold(rule, truth, score)
    summary = m.binary_summary(truth, score, threshold)
    bv = m.bacterial_vs_viral_auc(scaled, targets, labels)
    return AblationRow(recipe.name, rule, recipe.minutes, len(val), float(summary["auc"]), threshold,
                       float(summary["sensitivity"]), float(summary["specificity"]),
                       float(bv) if np.isfinite(bv) else None,
                       _worst_shift_balanced(model, labels, images, targets, probs, threshold))


def _worst_shift_balanced(model: object, labels: Sequence[str], images: np.ndarray, targets: np.ndarray,
                          probs: np.ndarray, threshold: float) -> float | None:
    """The operating point's worst balanced accuracy on the validation images under each simulated
    acquisition (the temperature stays the clean one, as in `shift_rule`)."""
    from trainer.shift_rule import SHIFTS
    from trainer.train import predict_images

    if m.pneumonia_score(probs, labels) is None:
        return None
    temperature = m.fit_temperature(probs, targets)
    worst = 1.0
    for shift in SHIFTS.values():
        shifted = predict_images(model, np.stack([shift(image) for image in images]))
        truth, score = _score(labels, m.apply_temperature(shifted, temperature), targets)
        rates = m.binary_summary(truth, score, threshold)
        worst = min(worst, (float(rates["sensitivity"]) + float(rates["specificity"])) / 2)
    return worst


def write_ablation(run_dir: Path, recipes: Sequence[Recipe]) -> Path:
    config = TrainConfig.load(run_dir / "config.json")
    rows = [score_recipe(r, run_dir, config.operating_rule) for r in recipes]
    out = run_dir / "evaluation"
    out.mkdir(exist_ok=True)
    (out / "ablation.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    lines = [
        "## Recipes on the validation split", "",
        f"Each row is a trained model scored on the same {rows[0].n if rows else 0} validation images "
        "(temperature and threshold fitted on them by the stated rule; the test split was not used to "
        "choose). AUC: pneumonia vs normal (or the target class vs rest).", "",
        "| recipe | operating rule | val AUC | threshold | val sensitivity | val specificity | "
        "bacterial vs viral AUC | worst simulated shift: balanced accuracy | CPU minutes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        bv = "–" if r.bacterial_vs_viral_auc is None else f"{r.bacterial_vs_viral_auc:.3f}"
        worst = "–" if r.worst_shift_balanced is None else f"{r.worst_shift_balanced:.3f}"
        lines.append(f"| {r.recipe} | {r.rule} | {r.auc:.3f} | {r.threshold:.3f} | {r.sensitivity:.3f} | "
                     f"{r.specificity:.3f} | {bv} | {worst} | {r.minutes:.0f} |")
    lines += ["", "Worst simulated shift: the lowest (sensitivity + specificity) / 2 at the row's threshold on the "
              "validation images as they are and under gamma 0.6 and 1.6, contrast x0.7, blur sigma 1.5 and JPEG "
              "quality 25 (`trainer/shift_rule.py`)."]
    (out / "ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / "ablation.md"
