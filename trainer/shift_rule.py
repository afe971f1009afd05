"""`cxr-train operating-point`: the operating rule chosen on validation under simulated acquisition shifts.

The held-back test of the first pediatric model showed what a new period or device does: the
pneumonia scores of normal children rise, and a threshold fitted on clean validation images
calls many of them pneumonia. Brightening the *validation* images (gamma 0.6) reproduces
that failure here. So every candidate rule is fitted on clean validation and scored on the
validation images under each shift in `SHIFTS`; the rule with the best worst-case balanced
accuracy wins. The test split is only reported, never used to choose.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from cxrviewer.core.model.architecture import load_keras_model
from trainer import metrics as m
from trainer.data import Sample, read_split
from trainer.dataset import decode_samples
from trainer.operating_point import choose_threshold

RULES = ("youden", "sensitivity:0.95", "sensitivity:0.925", "sensitivity:0.90", "sensitivity:0.85")


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else image


def _gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    return (255.0 * (image / 255.0) ** gamma).astype(np.uint8)


def _contrast(image: np.ndarray, factor: float) -> np.ndarray:
    mean = float(image.mean())
    return np.clip((image.astype(np.float32) - mean) * factor + mean, 0, 255).astype(np.uint8)


SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "gamma 0.6 (brighter)": lambda x: _gamma(x, 0.6),
    "gamma 1.6 (darker)": lambda x: _gamma(x, 1.6),
    "contrast x0.7": lambda x: _contrast(x, 0.7),
    "blur sigma 1.5": lambda x: cv2.GaussianBlur(x, (0, 0), 1.5),
    "JPEG quality 25": lambda x: _jpeg(x, 25),
}


def _binary(labels: Sequence[str], probs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score = m.pneumonia_score(probs, labels)
    if score is None:
        raise ValueError("operating-point: only pneumonia models (NORMAL + pneumonia subtypes) are supported")
    return (targets != labels.index("NORMAL")).astype(int), score


def _rates(truth: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    called = score >= threshold
    sensitivity = float(called[truth == 1].mean()) if (truth == 1).any() else float("nan")
    specificity = float(1.0 - called[truth == 0].mean()) if (truth == 0).any() else float("nan")
    return {"sensitivity": sensitivity, "specificity": specificity,
            "accuracy": float((called == truth).mean()), "balanced": (sensitivity + specificity) / 2}


def shifted_probabilities(model: object, splits: dict[str, tuple[np.ndarray, np.ndarray]]
                          ) -> dict[tuple[str, str], np.ndarray]:
    """The model's probabilities for every (split, shift)."""
    from trainer.train import predict_images

    return {(name, shift): predict_images(model, np.stack([f(i) for i in images]))
            for name, (images, _) in splits.items() for shift, f in SHIFTS.items()}


def shift_table(model: object, labels: Sequence[str], splits: dict[str, tuple[np.ndarray, np.ndarray]],
                rules: Sequence[str] = RULES,
                probs: dict[tuple[str, str], np.ndarray] | None = None) -> dict[str, object]:
    """Every rule: threshold fitted on clean validation; rates on each split under each shift."""
    probs = probs if probs is not None else shifted_probabilities(model, splits)
    temperature = m.fit_temperature(probs[("val", "none")], splits["val"][1])
    table: dict[str, object] = {"temperature": temperature, "rules": {}}
    truth_val, score_val = _binary(labels, m.apply_temperature(probs[("val", "none")], temperature), splits["val"][1])
    for rule in rules:
        threshold = choose_threshold(rule, truth_val, score_val)
        rows = {}
        for name, (_, targets) in splits.items():
            rows[name] = {shift: _rates(*_binary(labels, m.apply_temperature(probs[(name, shift)], temperature),
                                                 targets), threshold) for shift in SHIFTS}
        worst = min(r["balanced"] for r in rows["val"].values())
        table["rules"][rule] = {"threshold": threshold, "val_worst_balanced": worst, **rows}
    table["chosen"] = max(table["rules"], key=lambda r: table["rules"][r]["val_worst_balanced"])
    return table


def _split_samples(model_dir: Path, data_root: Path) -> dict[str, list[Sample]]:
    samples = read_split(model_dir / "split.csv")
    resolved = [Sample(data_root / s.path, s.label, s.patient_id, s.source, s.split) for s in samples]
    return {name: [s for s in resolved if s.split == name] for name in ("val", "test")}


def choose_operating_point(model_dir: Path, data_root: Path) -> dict[str, object]:
    """Choose the rule for a bundled model, refit its card's threshold and internal-test metrics."""

    from trainer.evaluate import evaluate_predictions, markdown_report

    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    labels = list(card["labels"])
    size = int(card["input_size"])
    model = load_keras_model(model_dir / card.get("weights_file", "model.keras"))
    samples = _split_samples(model_dir, data_root)
    splits = {name: (decode_samples(items, size), np.array([labels.index(s.label) for s in items]))
              for name, items in samples.items()}
    probs = shifted_probabilities(model, splits)   # the clean ones serve the evaluation too
    table = shift_table(model, labels, splits, probs=probs)
    rule = str(table["chosen"])
    result = evaluate_predictions(labels, probs[("val", "none")], splits["val"][1],
                                  probs[("test", "none")], splits["test"][1], operating_rule=rule)
    result["split"] = "test"
    counts = card["training_data"]["split_counts"]
    evaluation = model_dir / "evaluation"
    (evaluation / "operating_point.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    (evaluation / "metrics.json").write_text(json.dumps({**result, "split_counts": counts}, indent=2) + "\n")
    report = markdown_report(card["name"], "test", labels, result, counts)
    ablation = evaluation / "ablation.md"   # trainer/ablation.py's table, kept in the report
    kept = "\n" + ablation.read_text(encoding="utf-8") if ablation.exists() else ""
    (evaluation / "report.md").write_text(report + "\n" + shift_markdown(table) + kept, encoding="utf-8")
    card["operating_threshold"] = float(result["operating_threshold"])
    card["temperature"] = float(result["temperature"])
    card["metrics"] = {"evaluated_on": card["metrics"].get("evaluated_on", ""), **result}
    card.setdefault("training", {})["operating_rule"] = (
        f"{rule}: fitted on clean validation; chosen among {', '.join(RULES)} for the best worst-case "
        "balanced accuracy on the validation images under simulated acquisition shifts "
        f"({', '.join(s for s in SHIFTS if s != 'none')}); see evaluation/operating_point.json")
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return table


def shift_markdown(table: dict[str, object]) -> str:
    shifts = list(SHIFTS)
    lines = ["## Operating rule under simulated acquisition shifts", "",
             "Each rule's threshold is fitted on clean validation images; the rates are on the same images "
             "(validation) or the internal test split after the shift. Chosen: the best worst-case balanced "
             f"accuracy on validation — **{table['chosen']}**.", "",
             "| rule | threshold | split | " + " | ".join(shifts) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in shifts) + " |"]
    for rule, row in table["rules"].items():  # type: ignore[union-attr]
        for split in ("val", "test"):
            cells = " | ".join(f"{row[split][s]['sensitivity']:.2f} / {row[split][s]['specificity']:.2f}"
                               for s in shifts)
            lines.append(f"| {rule} | {row['threshold']:.3f} | {split} | {cells} |")
    lines += ["", "Cells: sensitivity / specificity for pneumonia vs normal."]
    return "\n".join(lines) + "\n"
