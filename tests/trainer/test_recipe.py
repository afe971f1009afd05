"""The v2 training recipe: augmentation, the numpy input pipeline, operating point, cell-weight cap."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.augment import AugmentConfig, augment_image
from trainer.data import Sample, cell_balanced_weights
from trainer.operating_point import choose_threshold, sensitivity_threshold


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    return (40 + 2 * yy + (xx % 16 < 8) * 30).astype(np.uint8)


def test_augment_keeps_shape_range_and_is_seeded() -> None:
    config = AugmentConfig(acquisition=True, p_acquisition=1.0)
    a = augment_image(_image(), config, np.random.default_rng(7))
    b = augment_image(_image(), config, np.random.default_rng(7))
    c = augment_image(_image(), config, np.random.default_rng(8))
    assert a.shape == (64, 64) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 255.0
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0


def test_acquisition_family_changes_intensities_not_only_geometry() -> None:
    still = AugmentConfig(rotation_deg=0, shift=0, zoom=0, brightness=0, contrast=0)
    np.testing.assert_allclose(augment_image(_image(), still, np.random.default_rng(0)), _image())
    acquired = AugmentConfig(rotation_deg=0, shift=0, zoom=0, brightness=0, contrast=0,
                             acquisition=True, p_acquisition=1.0, crop=0.0)
    out = augment_image(_image(), acquired, np.random.default_rng(0))
    assert np.abs(out - _image()).mean() > 2.0


def test_no_horizontal_flip_unless_asked() -> None:
    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 200
    config = AugmentConfig(rotation_deg=0, shift=0, zoom=0, brightness=0, contrast=0)
    for seed in range(20):
        assert augment_image(image, config, np.random.default_rng(seed))[:, :8].mean() > 150


def test_pipeline_batches_are_deterministic_and_reshuffled_per_epoch() -> None:
    pytest.importorskip("keras")
    from trainer.dataset import make_dataset

    images = np.stack([np.full((16, 16), i, np.uint8) for i in range(10)])
    labels = np.arange(10) % 2
    data = make_dataset(images, labels, 2, 4, training=True, augment=None, seed=3,
                        sample_weights=np.linspace(0.5, 1.5, 10))
    assert len(data) == 3
    x, y, w = data[0]
    assert x.shape == (4, 16, 16, 1) and x.dtype == np.float32 and y.shape == (4, 2)
    ids = x[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(y.argmax(1), ids % 2)
    np.testing.assert_allclose(w, np.linspace(0.5, 1.5, 10)[ids])
    first = [int(v) for i in range(len(data)) for v in data[i][0][:, 0, 0, 0]]
    data.on_epoch_end()
    second = [int(v) for i in range(len(data)) for v in data[i][0][:, 0, 0, 0]]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    ordered = make_dataset(images, labels, 2, 4, training=False)
    assert [int(v) for v in ordered[0][0][:, 0, 0, 0]] == [0, 1, 2, 3]


def test_sensitivity_threshold_keeps_the_target_and_no_more() -> None:
    truth = np.array([1] * 20 + [0] * 10)
    score = np.concatenate([np.linspace(0.5, 0.99, 20), np.linspace(0.0, 0.6, 10)])
    t = sensitivity_threshold(truth, score, 0.95)
    assert (score[truth == 1] >= t).mean() >= 0.95
    assert (score[truth == 1] >= np.nextafter(t, 1)).mean() < 0.95
    assert choose_threshold("sensitivity:0.95", truth, score) == t
    assert 0 < choose_threshold("youden", truth, score) < 1
    with pytest.raises(ValueError, match="unknown operating rule"):
        choose_threshold("sensitivity:2", truth, score)


def test_cell_weights_are_capped() -> None:
    from pathlib import Path

    samples = ([Sample(Path(f"a{i}"), "NORMAL", f"a{i}", "big", "train") for i in range(100)]
               + [Sample(Path("b"), "NORMAL", "b", "tiny", "train")])
    weights = cell_balanced_weights(samples, max_weight=5.0)
    assert weights.max() <= 5.0 + 1e-6
    assert weights[-1] == pytest.approx(weights.max())
    assert weights.mean() == pytest.approx(1.0, rel=0.05)


def test_group_balance_makes_adult_label_weights_equal() -> None:
    from pathlib import Path

    from trainer.data import age_group, group_balanced_weights

    def make(source: str, label: str, n: int) -> list[Sample]:
        return [Sample(Path(f"{source}{label}{i}"), label, f"{source}{i}", source, "train") for i in range(n)]

    samples = (make("chest_xray", "NORMAL", 40) + make("chest_xray", "VIRAL", 40) + make("covid19", "COVID-19", 30)
               + make("figure1", "COVID-19", 20) + make("nih_adult_normal", "NORMAL", 30))
    weights = group_balanced_weights(samples)
    total = {}
    for s, w in zip(samples, weights):
        key = (age_group(s.source), s.label)
        total[key] = total.get(key, 0.0) + float(w)
    assert total[("adult", "COVID-19")] == pytest.approx(total[("adult", "NORMAL")], rel=1e-3)
    assert total[("pediatric", "NORMAL")] == pytest.approx(total[("adult", "NORMAL")], rel=1e-3)
    covid = {s.source: float(w) * 1 for s, w in zip(samples, weights) if s.label == "COVID-19"}
    assert covid["figure1"] == pytest.approx(covid["covid19"] * 30 / 20, rel=1e-3)


def test_the_card_population_comes_from_the_sources_age_groups() -> None:
    from trainer.export import population

    assert population(["chest_xray"]) == "pediatric"
    assert population(["covid19", "nih_adult_normal"]) == "adult"
    assert population(["chest_xray", "covid19", "nih_adult_normal"]) == "mixed"
