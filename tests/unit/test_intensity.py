"""In-graph histogram equalisation (core.model.intensity): what it computes, what it is invariant
to, and that a model carrying it saves, loads, exports to ONNX and keeps its promise end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.model.architecture import build_classifier, input_stem, load_keras_model, model_intensity
from cxrviewer.core.model.intensity import equalise_reference, histogram_equalisation_layer
from cxrviewer.core.model.preprocessing import PreprocessingSpec
from tests.model_factory import build_tiny_classifier, make_model_folder


def _radiograph_like(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 90 + 80 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.5) ** 2) * 8) + 70 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.5) ** 2) * 8)
    return np.clip(base + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8)


def _gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    return (255.0 * (image / 255.0) ** gamma).astype(np.uint8)


def _layer_output(images: np.ndarray) -> np.ndarray:
    layer = histogram_equalisation_layer()()
    return np.asarray(layer(images[..., np.newaxis].astype(np.float32)))[..., 0]


def test_the_layer_computes_the_reference_per_image() -> None:
    images = np.stack([_radiograph_like(0), _radiograph_like(1) // 2, np.full((64, 64), 7, np.uint8)])
    expected = np.stack([equalise_reference(image) for image in images])
    np.testing.assert_allclose(_layer_output(images), expected, atol=1e-3)
    # a flat image maps every pixel to the top; a dimmed copy still spans the whole range
    assert np.all(expected[2] == 255.0)
    assert expected[1].max() == 255.0 and expected[1].min() < 10.0


@pytest.mark.parametrize("change", [lambda x: _gamma(x, 0.6), lambda x: _gamma(x, 1.6),
                                    lambda x: (x // 2 + 20).astype(np.uint8)],
                         ids=["brighter", "darker", "flatter"])
def test_a_monotone_change_of_intensity_barely_changes_the_output(change) -> None:
    image = _radiograph_like(2)
    raw_change = np.abs(change(image).astype(float) - image).mean()
    equalised_change = np.abs(equalise_reference(change(image)) - equalise_reference(image)).mean()
    assert raw_change > 15.0                      # the change is large before equalisation ...
    assert equalised_change < 2.0                 # ... and only 8-bit rounding after it


def test_unknown_standardisation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown intensity standardisation 'clahe'"):
        input_stem(32, "clahe")


def test_the_card_describes_the_standardisation_only_when_there_is_one() -> None:
    assert "standardisation" not in PreprocessingSpec(192).to_dict()
    text = PreprocessingSpec(192, standardisation="equalise").to_dict()["standardisation"]
    assert "histogram equalisation" in str(text)


def test_an_equalising_model_saves_loads_and_predicts_the_same(tmp_path: Path) -> None:
    model = build_tiny_classifier(3, 32, seed=1, intensity="equalise")
    assert model_intensity(model) == "equalise"
    assert model_intensity(build_tiny_classifier(3, 32, seed=1)) == "none"
    model.save(tmp_path / "m.keras")
    loaded = load_keras_model(tmp_path / "m.keras")
    x = np.stack([_radiograph_like(s, 32) for s in range(3)])[..., np.newaxis].astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert model_intensity(loaded) == "equalise"


def test_an_equalising_model_is_blind_to_gamma_and_a_plain_one_is_not() -> None:
    image = _radiograph_like(3, 32)
    pair = np.stack([image, _gamma(image, 0.6)])[..., np.newaxis].astype(np.float32)
    shifts = {}
    for intensity in ("none", "equalise"):
        probs = build_tiny_classifier(3, 32, seed=5, intensity=intensity).predict(pair, verbose=0)
        shifts[intensity] = float(np.abs(probs[0] - probs[1]).max())
    assert shifts["equalise"] < shifts["none"] / 5


def test_the_densenet_builds_with_equalisation_first() -> None:
    model = build_classifier(3, 64, intensity="equalise")
    names = [layer.name for layer in model.layers]
    assert names.index("equalise") < names.index("gray_to_rgb") < names.index("imagenet_norm")


def test_onnx_export_of_an_equalising_model_agrees_with_tensorflow(tmp_path: Path) -> None:
    pytest.importorskip("tf2onnx", reason="ONNX export needs the dev extra (tf2onnx)")
    from cxrviewer.core.model.onnx_engine import ONNX_CARD_KEY
    from trainer.onnx_export import export_onnx

    folder = make_model_folder(tmp_path, "eq", model=build_tiny_classifier(3, 32, seed=6, intensity="equalise"))
    card = export_onnx(folder)   # raises when ONNX and TensorFlow disagree
    assert ONNX_CARD_KEY in card.extra
