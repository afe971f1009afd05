"""Evaluation metrics on synthetic predictions with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from trainer import metrics as m
from trainer.evaluate import evaluate_predictions


def test_temperature_scaling_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    logits = rng.normal(0, 1.5, (n, 3))
    true_probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    targets = np.array([rng.choice(3, p=p) for p in true_probs])
    overconfident = m.apply_temperature(true_probs, 1 / 3)  # logits × 3
    fitted = m.fit_temperature(overconfident, targets)
    assert fitted == pytest.approx(3.0, rel=0.15)
    assert m.expected_calibration_error(m.apply_temperature(overconfident, fitted), targets) < \
        m.expected_calibration_error(overconfident, targets)


def test_classification_metrics_known_confusion() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    targets = np.array([0, 1, 2, 2])
    result = m.classification_metrics(probs, targets, ["NORMAL", "BACTERIAL", "VIRAL"])
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert result["per_class"]["VIRAL"]["recall"] == pytest.approx(0.5)
    assert result["per_class"]["NORMAL"]["precision"] == pytest.approx(0.5)


def test_pneumonia_score_and_bacterial_vs_viral() -> None:
    labels = ["NORMAL", "BACTERIAL", "VIRAL"]
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1]])
    np.testing.assert_allclose(m.pneumonia_score(probs, labels), [0.2, 0.9, 0.9, 0.8])
    assert m.pneumonia_score(probs, ["COVID-19", "X", "Y"]) is None
    assert m.bacterial_vs_viral_auc(probs, np.array([0, 1, 2, 1]), labels) == pytest.approx(1.0)


def test_binary_summary_at_threshold() -> None:
    summary = m.binary_summary(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1]), 0.5)
    assert summary["sensitivity"] == 0.5 and summary["specificity"] == 0.5
    assert summary["auc"] == pytest.approx(0.75)


def test_evaluate_predictions_fits_on_val_reports_on_test() -> None:
    rng = np.random.default_rng(1)
    labels = ["NORMAL", "BACTERIAL", "VIRAL"]
    def fake(n: int) -> tuple[np.ndarray, np.ndarray]:
        targets = rng.integers(0, 3, n)
        probs = np.full((n, 3), 0.1) + 0.7 * np.eye(3)[targets] + rng.uniform(0, 0.2, (n, 3))
        return probs / probs.sum(1, keepdims=True), targets
    val, test = fake(300), fake(200)
    result = evaluate_predictions(labels, *val, *test, test_sources=["a"] * 100 + ["b"] * 100)
    assert result["test"]["n"] == 200
    assert result["pneumonia_vs_normal"]["auc"] > 0.9
    assert 0 < result["operating_threshold"] < 1
    assert set(result["per_source"]) == {"a", "b"}
