"""The operating point: which threshold turns a probability into the model's call.

Youden's J maximises sensitivity + specificity on validation — and on data from the same
period as training it picks a point that does not transfer (the first pediatric model's
specificity fell from 0.96 to 0.68 on the held-back test). `sensitivity:T` instead takes the
highest threshold whose validation sensitivity is still at least T, after temperature
scaling: a stated clinical aim (miss few pneumonias) that leaves the most specificity.
"""
from __future__ import annotations

import numpy as np

RULES = ("youden", "sensitivity:<target, e.g. 0.95>")


def sensitivity_threshold(truth: np.ndarray, score: np.ndarray, target: float) -> float:
    """The highest threshold t with mean(score[truth == 1] >= t) >= target."""
    positives = np.sort(np.asarray(score, dtype=np.float64)[np.asarray(truth) == 1])
    if positives.size == 0:
        return 0.5
    # keep at least ceil(target * n) positives at or above t
    keep = int(np.ceil(target * positives.size - 1e-9))
    keep = min(max(keep, 1), positives.size)
    return float(positives[positives.size - keep])


def choose_threshold(rule: str, truth: np.ndarray, score: np.ndarray) -> float:
    from trainer.metrics import youden_threshold

    if rule == "youden":
        return youden_threshold(truth, score)
    kind, _, value = rule.partition(":")
    if kind == "sensitivity":
        try:
            target = float(value)
        except ValueError:
            target = -1.0
        if 0.0 < target <= 1.0:
            return sensitivity_threshold(truth, score, target)
    raise ValueError(f"unknown operating rule {rule!r}: one of {', '.join(RULES)}")
