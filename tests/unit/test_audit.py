"""Explanation audit on a model whose answer is known: it only looks at the top-left corner."""
from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.xai.audit import STEPS, explanation_audit

SIZE = 32


def corner_model(batch: np.ndarray) -> np.ndarray:
    """p(class 1) grows with the contrast of the top-left 8 × 8 corner; nothing else matters."""
    corner = np.asarray(batch)[:, :8, :8, 0]
    score = corner.std(axis=(1, 2)) / 30.0
    p1 = 1.0 / (1.0 + np.exp(-(score - 1.0) * 4))
    return np.stack([1 - p1, p1], axis=1)


def textured_input() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (SIZE, SIZE, 1)).astype(np.float32)


def corner_map() -> np.ndarray:
    cam = np.zeros((4, 4), np.float32)
    cam[0, 0] = 1.0          # the corner cell (8 × 8 pixels of the 32 × 32 input)
    cam[1, 1] = 0.1
    return cam


def test_a_map_on_the_corner_makes_the_deletion_curve_drop_at_once():
    x = textured_input()
    result = explanation_audit(corner_model, x, {"gradcam": corner_map()}, "gradcam", 1, "ABNORMAL", "relu")
    assert result.deletion[0] > 0.9                       # the unchanged image
    assert result.deletion[1] < 0.2                       # the hottest 10 % (the corner) blurred away
    assert result.insertion[1] > 0.9                      # … or put back into the blurred image
    assert result.deletion_area < result.random_deletion_area
    assert result.insertion_area > result.random_insertion_area
    assert result.points_at_evidence
    assert "points at what the model uses" in result.verdict()
    assert result.verdict().startswith("Removing the hottest 20 % of the map changes p(ABNORMAL) from")
    assert len(result.fractions) == STEPS + 1


def test_a_map_away_from_the_corner_does_no_better_than_chance():
    x = textured_input()
    rows, cols = np.indices((4, 4))
    elsewhere = (rows + cols).astype(np.float32)      # hottest at the bottom right, coldest at the corner
    result = explanation_audit(corner_model, x, {"gradcam": elsewhere}, "gradcam", 1, "ABNORMAL", "relu", seed=1)
    assert result.deletion[2] > 0.9                       # removing the far corner changes nothing
    assert not result.points_at_evidence
    assert "does not point at what the model uses" in result.verdict()


def test_agreement_between_methods_is_a_rank_correlation():
    cam = corner_map()
    maps = {"gradcam": cam, "hirescam": cam * 2, "gradcam++": -cam}
    result = explanation_audit(corner_model, textured_input(), maps, "gradcam", 1, "ABNORMAL", "relu")
    assert result.method_agreement["gradcam vs hirescam"] == pytest.approx(1.0)
    assert result.method_agreement["gradcam vs gradcam++"] < 0


def test_all_curves_come_from_one_batched_call():
    calls: list[int] = []

    def counting(batch):
        calls.append(len(batch))
        return corner_model(batch)

    explanation_audit(counting, textured_input(), {"gradcam": corner_map()}, "gradcam", 1, "ABNORMAL", "relu")
    assert calls == [4 * (STEPS + 1)]


def test_a_model_that_ignores_the_image_gets_no_verdict_either_way():
    def constant(batch):
        return np.tile(np.array([[0.6, 0.4]]), (len(batch), 1))

    result = explanation_audit(constant, textured_input(), {"gradcam": corner_map()}, "gradcam", 1, "ABNORMAL", "relu")
    assert result.flat and not result.points_at_evidence
    assert "cannot tell" in result.verdict()
