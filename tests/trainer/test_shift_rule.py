"""The operating rule is chosen on validation under simulated shifts: a model whose pneumonia score
rises with brightness (the held-back failure) must get a stricter threshold than Youden's."""
from __future__ import annotations

import numpy as np

from trainer.shift_rule import SHIFTS, shift_markdown, shift_table

LABELS = ["NORMAL", "BACTERIAL", "VIRAL"]


class BrightnessModel:
    """p(pneumonia) from a lesion patch (the signal) plus the image's mean brightness (the confound)."""

    def predict(self, x: np.ndarray, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        x = x[..., 0] / 255.0
        logit = 9.0 * (x[:, 4:10, 4:10].mean(axis=(1, 2)) - x.mean(axis=(1, 2))) + 6.0 * (x.mean(axis=(1, 2)) - 0.45)
        p = 1 / (1 + np.exp(-logit))
        return np.stack([1 - p, p * 0.6, p * 0.4], axis=1).astype(np.float32)


def _split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    targets = rng.integers(0, 3, n)
    images = rng.normal(100, 10, (n, 16, 16)).clip(0, 255)
    images[targets != 0, 4:10, 4:10] += rng.normal(60, 25, ((targets != 0).sum(), 1, 1))
    return images.clip(0, 255).astype(np.uint8), targets


def test_brightness_confounded_model_gets_a_stricter_rule() -> None:
    rng = np.random.default_rng(0)
    splits = {"val": _split(rng, 300), "test": _split(rng, 300)}
    table = shift_table(BrightnessModel(), LABELS, splits)
    rules = table["rules"]
    assert set(rules["youden"]["val"]) == set(SHIFTS)
    chosen = table["chosen"]
    assert rules[chosen]["val_worst_balanced"] == max(r["val_worst_balanced"] for r in rules.values())
    brighter = "gamma 0.6 (brighter)"
    assert rules["youden"]["val"][brighter]["specificity"] < rules["youden"]["val"]["none"]["specificity"]
    assert chosen != "youden" and rules[chosen]["threshold"] > rules["youden"]["threshold"]
    text = shift_markdown(table)
    assert f"**{chosen}**" in text and "| youden |" in text
