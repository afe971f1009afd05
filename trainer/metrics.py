"""Evaluation metrics as pure functions over labels and probabilities (numpy + scikit-learn)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxrviewer.core.labels import pneumonia_labels


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(targets)), targets], 1e-12, 1.0))))


def fit_temperature(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising validation NLL (Guo et al. 2017), searched on a log grid then refined."""
    from scipy.optimize import minimize_scalar

    if len(targets) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probabilities, float(np.exp(log_t))), targets),
        bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, bins: int = 10) -> float:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def reliability_bins(probabilities: np.ndarray, targets: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append((float(confidence[inside].mean()), float(correct[inside].mean()), int(inside.sum())))
    return rows


def pneumonia_score(probabilities: np.ndarray, labels: Sequence[str]) -> np.ndarray | None:
    """Sum of the pneumonia classes' probabilities, or None for a model without NORMAL/pneumonia."""
    summed = pneumonia_labels(labels)
    if not summed:
        return None  # e.g. covid3: COVID-19 is not one of the pneumonia-subtype classes summed here
    columns = [list(labels).index(label) for label in summed]
    return probabilities[:, columns].sum(axis=1)


def youden_threshold(truth: np.ndarray, score: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity − 1 on (validation) data."""
    from sklearn.metrics import roc_curve

    if len(np.unique(truth)) < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(truth, score)
    best = int(np.argmax(tpr - fpr))
    return float(min(max(thresholds[best], 1e-6), 1.0))


def binary_summary(truth: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    predicted = score >= threshold
    positives, negatives = truth == 1, truth == 0
    summary = {
        "threshold": float(threshold),
        "accuracy": float((predicted == positives).mean()) if len(truth) else float("nan"),
        "sensitivity": float(predicted[positives].mean()) if positives.any() else float("nan"),
        "specificity": float((~predicted[negatives]).mean()) if negatives.any() else float("nan"),
        "n_positive": int(positives.sum()),
        "n_negative": int(negatives.sum()),
    }
    summary["auc"] = float(roc_auc_score(truth, score)) if positives.any() and negatives.any() else float("nan")
    return summary


def classification_metrics(
    probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, per-class precision/recall/F1, macro F1, confusion matrix and one-vs-rest AUCs."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    n_classes = len(labels)
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predicted, labels=list(range(n_classes)), zero_division=0)
    auc = {}
    for c, label in enumerate(labels):
        truth = (targets == c).astype(int)
        auc[label] = float(roc_auc_score(truth, probabilities[:, c])) if 0 < truth.sum() < len(truth) else float("nan")
    finite = [v for v in auc.values() if np.isfinite(v)]
    return {
        "n": int(len(targets)),
        "accuracy": float((predicted == targets).mean()) if len(targets) else float("nan"),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            label: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                    "support": int(support[c]), "auc_ovr": auc[label]}
            for c, label in enumerate(labels)
        },
        "macro_auc_ovr": float(np.mean(finite)) if finite else float("nan"),
        "confusion_matrix": confusion_matrix(targets, predicted, labels=list(range(n_classes))).tolist(),
    }


def bacterial_vs_viral_auc(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> float:
    """AUC of P(viral | pneumonia) among images that truly are bacterial or viral."""
    from sklearn.metrics import roc_auc_score

    if not {"BACTERIAL", "VIRAL"} <= set(labels):
        return float("nan")
    b, v = labels.index("BACTERIAL"), labels.index("VIRAL")
    keep = (targets == b) | (targets == v)
    if len(np.unique(targets[keep])) < 2:
        return float("nan")
    score = probabilities[keep, v] / np.clip(probabilities[keep, v] + probabilities[keep, b], 1e-12, None)
    return float(roc_auc_score((targets[keep] == v).astype(int), score))


def per_source_metrics(
    probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str], sources: Sequence[str]
) -> dict[str, dict[str, object]] | None:
    """`classification_metrics` per data source, or None when there is only one source."""
    if not sources or len(set(sources)) < 2:
        return None
    where = np.asarray(sources)
    return {source: classification_metrics(probabilities[where == source], targets[where == source], labels)
            for source in sorted(set(sources))}


def subgroup_metrics(
    probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str], sources: Sequence[str]
) -> dict[str, object]:
    """The bacterial-vs-viral AUC and the per-source metrics, each only where it can be computed."""
    out: dict[str, object] = {}
    bv = bacterial_vs_viral_auc(probabilities, targets, labels)
    if np.isfinite(bv):
        out["bacterial_vs_viral_auc"] = bv
    per_source = per_source_metrics(probabilities, targets, labels, sources)
    if per_source is not None:
        out["per_source"] = per_source
    return out
