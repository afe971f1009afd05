"""Sanity checks: rank correlation, the model-randomisation test on a tiny model, the lung mask."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer.core.imaging import default_display
from cxrviewer.core.model.preprocessing import model_input
from cxrviewer.core.model.runtime import InferenceEngine, load_classifier
from cxrviewer.core.types import Window, XrayImage
from cxrviewer.core.xai.cam import CAM, GRADCAM
from cxrviewer.core.xai.sanity import (
    RandomisationResult,
    heat_outside_mask,
    lung_heat_check,
    lung_mask,
    randomisation_test_on_input,
    randomised_weights,
    spearman,
    top_weighted_layers,
)
from tests.model_factory import make_model_folder, make_xray
from tests.shared_data import requires_shared, shared_dir

# ------------------------------------------------------------------------ Spearman

@pytest.mark.parametrize("seed", range(6))
def test_spearman_matches_scipy_including_ties(seed: int) -> None:
    spearmanr = pytest.importorskip("scipy.stats").spearmanr   # SciPy comes with the dev extra (scikit-learn)
    rng = np.random.default_rng(seed)
    a = np.maximum(rng.normal(size=(7, 7)), 0)          # ReLU'd maps: many tied zeros
    b = np.maximum(a + rng.normal(scale=0.7, size=(7, 7)), 0)
    expected = spearmanr(a.ravel(), b.ravel()).statistic
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)


def test_spearman_edge_cases() -> None:
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros((4, 4))) is None        # a flat map has no ranks
    with pytest.raises(ValueError, match="differ in size"):
        spearman(a, np.zeros((3, 3)))


def test_randomisation_result_verdicts() -> None:
    cam = np.zeros((2, 2), np.float32)
    base = dict(model_name="m", class_index=0, class_label="NORMAL", method=GRADCAM, layer="relu",
                randomised_layers=("predictions", "bn"), real_cam=cam, randomised_cam=cam)
    assert RandomisationResult(rank_correlation=0.9, **base).similar is True
    assert "Warning" in RandomisationResult(rank_correlation=0.9, **base).message
    assert RandomisationResult(rank_correlation=-0.55, **base).similar is True
    assert RandomisationResult(rank_correlation=0.1, **base).similar is False
    assert "Passed" in RandomisationResult(rank_correlation=0.1, **base).message
    assert RandomisationResult(rank_correlation=None, **base).similar is None


# ------------------------------------------------------------------------ randomisation on a tiny model

@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    folder = make_model_folder(tmp_path_factory.mktemp("models"), input_size=32)
    loaded = load_classifier(folder)
    return loaded, InferenceEngine(loaded)


def test_top_weighted_layers_walk_down_from_the_head(tiny) -> None:
    loaded, _ = tiny
    assert top_weighted_layers(loaded.model, 3) == ("predictions", "bn", "conv3_conv")
    everything = top_weighted_layers(loaded.model, 50)
    assert everything == ("predictions", "bn", "conv3_conv", "conv2_conv", "conv1_conv")   # never the input norm
    with pytest.raises(ValueError):
        top_weighted_layers(loaded.model, 0)


def test_randomised_weights_change_inside_and_are_restored(tiny) -> None:
    loaded, engine = tiny
    x = model_input(make_xray(48, seed=3), engine.input_size)
    before = engine.predict(x)
    weights = [w.copy() for w in loaded.model.get_weights()]
    with randomised_weights(loaded.model, ("predictions", "bn"), seed=1):
        inside = engine.predict(x)
        kernel = loaded.model.get_layer("predictions").kernel.numpy()
        assert not np.allclose(kernel, weights[-2])
        assert np.allclose(loaded.model.get_layer("bn").gamma.numpy(), 1.0)
    assert not np.allclose(inside, before)
    np.testing.assert_array_equal(engine.predict(x), before)
    for restored, original in zip(loaded.model.get_weights(), weights):
        np.testing.assert_array_equal(restored, original)


def test_weights_are_restored_when_the_body_fails(tiny) -> None:
    loaded, _ = tiny
    weights = [w.copy() for w in loaded.model.get_weights()]
    with pytest.raises(RuntimeError):
        with randomised_weights(loaded.model, ("predictions",), seed=2):
            raise RuntimeError("boom")
    for restored, original in zip(loaded.model.get_weights(), weights):
        np.testing.assert_array_equal(restored, original)


def test_model_randomisation_test_compares_real_and_randomised_maps(tiny) -> None:
    loaded, engine = tiny
    image = make_xray(64, seed=5)
    x = model_input(image, engine.input_size)
    result = randomisation_test_on_input(loaded, x, class_index=1, engine=engine, top_k=5, seed=0)
    _, real = engine.predict_and_cam(x, 1, None, GRADCAM)
    np.testing.assert_allclose(result.real_cam, real, rtol=1e-5, atol=1e-7)   # the map the viewer shows
    assert result.class_label == "BACTERIAL" and result.layer == "relu"
    assert result.randomised_layers == ("predictions", "bn", "conv3_conv", "conv2_conv", "conv1_conv")
    assert result.real_cam.shape == result.randomised_cam.shape == real.shape
    assert not np.allclose(result.real_cam, result.randomised_cam)
    if result.rank_correlation is not None:
        assert result.rank_correlation == pytest.approx(spearman(result.real_cam, result.randomised_cam))
        assert -1.0 <= result.rank_correlation <= 1.0
    again = randomisation_test_on_input(loaded, x, class_index=1, engine=engine, top_k=5, seed=0)
    np.testing.assert_array_equal(again.randomised_cam, result.randomised_cam)       # seeded: reproducible


def test_model_randomisation_test_uses_the_top_class_and_maps_cam_to_gradcam(tiny) -> None:
    loaded, engine = tiny
    image = make_xray(64, seed=6)
    probabilities = engine.predict(model_input(image, engine.input_size))[0]
    result = randomisation_test_on_input(loaded, model_input(image, engine.input_size), method=CAM, engine=engine,
                                         top_k=1)
    assert result.class_index == int(np.argmax(probabilities))
    assert result.method == GRADCAM
    assert result.randomised_layers == ("predictions",)


# ------------------------------------------------------------------------ lung mask

def chest_phantom(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A frontal-chest-like 8-bit image (dark air at the sides, body, two dark lungs) and its lungs."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.full((size, size), 10, np.float32)                                  # air
    body = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.55) / 0.6) ** 2 < 1
    image[body] = 190
    lungs = np.zeros((size, size), bool)
    for cx in (0.32, 0.68):
        lungs |= ((xx - cx) / 0.12) ** 2 + ((yy - 0.45) / 0.25) ** 2 < 1
    image[lungs] = 70
    noise = np.random.default_rng(0).normal(0, 6, (size, size))
    return np.clip(image + noise, 0, 255).astype(np.uint8), lungs


def test_lung_mask_finds_both_lungs_of_a_phantom() -> None:
    image, lungs = chest_phantom()
    mask = lung_mask(image)
    assert mask.shape == image.shape and mask.dtype == bool
    iou = (mask & lungs).sum() / (mask | lungs).sum()
    assert iou > 0.75
    assert not mask[:, :20].any() and not mask[:, -20:].any()        # the air beside the body is excluded
    assert mask[:, :128].any() and mask[:, 128:].any()


def test_lung_mask_is_empty_without_lungs() -> None:
    assert not lung_mask(np.full((120, 100), 128, np.uint8)).any()
    with pytest.raises(ValueError):
        lung_mask(np.zeros((4, 4, 3), np.uint8))


def test_lung_mask_keeps_the_image_size_for_large_and_odd_images() -> None:
    image, _ = chest_phantom(256)
    large = cv2.resize(image, (701, 903), interpolation=cv2.INTER_LINEAR)
    mask = lung_mask(large)
    assert mask.shape == (903, 701) and 0.1 < mask.mean() < 0.4


def test_heat_outside_mask() -> None:
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    left = np.array([[1.0, 0.0]], np.float32)
    assert heat_outside_mask(left, mask) == pytest.approx(0.125, abs=0.01)   # bilinear ramp across the middle
    inside = np.zeros((4, 4), np.float32)
    inside[:, 0] = 1
    assert heat_outside_mask(inside, mask) == pytest.approx(0.0, abs=0.1)
    outside = np.zeros((4, 4), np.float32)
    outside[:, 3] = 1
    assert heat_outside_mask(outside, mask) == pytest.approx(1.0, abs=0.1)
    assert heat_outside_mask(outside, np.zeros((10, 10), bool)) is None
    assert heat_outside_mask(np.zeros((4, 4)), mask) is None


def _phantom_xray(image: np.ndarray) -> XrayImage:
    pixels = image.astype(np.float32)
    pixels.setflags(write=False)
    return XrayImage(path=Path("phantom.png"), display_name="phantom", pixels=pixels,
                     default_window=Window(127.5, 255.0), presets=(), photometric="MONOCHROME2")


def test_lung_heat_check_warns_when_the_heat_sits_outside_the_lungs() -> None:
    image, _ = chest_phantom()
    xray = _phantom_xray(image)
    on_lungs = np.zeros((8, 8), np.float32)
    on_lungs[3, 2] = on_lungs[3, 5] = 1.0
    result = lung_heat_check(xray, on_lungs)
    assert result.outside_share is not None and result.outside_share < 0.5
    assert not result.warning and "outside the (rough) lung fields" in result.message
    corner = np.zeros((8, 8), np.float32)
    corner[7, 0] = corner[0, 7] = 1.0
    warned = lung_heat_check(xray, corner)
    assert warned.warning and warned.outside_share > 0.9
    assert warned.message.startswith("Shortcut warning")
    blank = lung_heat_check(_phantom_xray(np.full((64, 64), 128, np.uint8)), corner)
    assert blank.outside_share is None and blank.mask_fraction == 0 and "No lung fields" in blank.message


@requires_shared
def test_lung_mask_on_real_frontal_films() -> None:
    from cxrviewer.core.io import load_image

    data = shared_dir() / "data"
    files = sorted((data / "chest_xray/train/NORMAL").glob("*.jpeg"))[:4] + \
        sorted((data / "nih_adult_normal/NORMAL").glob("*.jpg"))[:4]
    good = 0
    for path in files:
        mask = lung_mask(default_display(load_image(path)))
        half = mask.shape[1] // 2
        if 0.1 < mask.mean() < 0.5 and mask[:, :half].mean() > 0.05 and mask[:, half:].mean() > 0.05:
            good += 1
    assert good >= 7, f"only {good} of {len(files)} films got a plausible two-lung mask"


@requires_shared
def test_lung_mask_finds_no_lungs_in_an_extremity() -> None:
    from cxrviewer.core.io import load_image

    path = shared_dir() / "dicom" / "cr_extremity_mono1_j2k_lossless.dcm"
    assert lung_mask(default_display(load_image(path))).mean() < 0.05


# ------------------------------------------------------------------------ honest display

def test_heatmap_gate_hides_maps_of_unlikely_classes() -> None:
    from cxrviewer.core.xai.sanity import heatmap_gate

    labels = ("NORMAL", "BACTERIAL", "VIRAL")
    shown = heatmap_gate(labels, (0.1, 0.7, 0.2), 1, 0.42)
    assert shown.shown_by_default and "p(BACTERIAL) = 0.70" in shown.message
    hidden = heatmap_gate(labels, (0.1, 0.7, 0.2), 2, 0.42)
    assert not hidden.shown_by_default
    assert hidden.message.startswith("Heat map hidden: p(VIRAL) = 0.20, but the model calls BACTERIAL")
    assert heatmap_gate(labels, (0.58, 0.42, 0.0), 1, 0.42).shown_by_default     # at the threshold: shown
    # The threshold applies to the pneumonia probability (BACTERIAL + VIRAL), not to each class:
    # NORMAL is the top class here, but at threshold 0.5 the model calls pneumonia (0.6).
    normal_top = (0.4, 0.35, 0.25)
    assert not heatmap_gate(labels, normal_top, 0, 0.5).shown_by_default
    assert heatmap_gate(labels, normal_top, 1, 0.5).shown_by_default
    assert heatmap_gate(labels, normal_top, 0, 0.7).shown_by_default           # 0.6 < 0.7: NORMAL
    covid = ("COVID-19", "NORMAL", "VIRAL")
    assert heatmap_gate(covid, (0.25, 0.6, 0.15), 0, 0.19).shown_by_default    # p(COVID-19) above its threshold
    assert not heatmap_gate(covid, (0.25, 0.6, 0.15), 1, 0.19).shown_by_default
    with pytest.raises(ValueError):
        heatmap_gate(labels, (0.5, 0.5), 0, 0.5)
    with pytest.raises(ValueError):
        heatmap_gate(labels, (0.2, 0.3, 0.5), 3, 0.5)
