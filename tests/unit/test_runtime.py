"""Export → verify → load → run: the model runtime on tiny random-weight models in tmp dirs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.errors import InferenceError, ModelLoadError
from cxrviewer.core.model.card import ModelCard, sha256_file
from cxrviewer.core.model.export import WEIGHTS_FILENAME, export_model
from cxrviewer.core.model.preprocessing import PreprocessingSpec, model_input
from cxrviewer.core.model.runtime import (
    InferenceEngine,
    InferenceRequest,
    image_key,
    load_classifier,
    run_request,
)
from tests.model_factory import TINY_LABELS, build_tiny_classifier, make_model_folder, make_xray, tamper_weights

SIZE = 32


@pytest.fixture(scope="module")
def tiny_model():
    return build_tiny_classifier(3, SIZE, seed=1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_model):
    return make_model_folder(tmp_path_factory.mktemp("models"), input_size=SIZE, model=tiny_model)


@pytest.fixture(scope="module")
def engine(folder):
    engine = InferenceEngine(load_classifier(folder))
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(3).uniform(0, 255, (5, SIZE, SIZE, 1)).astype(np.float32)


def _copy_folder(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# -- export ---------------------------------------------------------------------------------

def test_export_writes_weights_and_a_matching_card(folder):
    card = ModelCard.read(folder)
    assert card.name == "tiny" and card.labels == TINY_LABELS and card.input_size == SIZE
    assert card.weights_file == WEIGHTS_FILENAME and card.cam_layer == "relu"
    assert card.weights_sha256 == sha256_file(folder / WEIGHTS_FILENAME)
    assert card.preprocessing == PreprocessingSpec(SIZE).to_dict()
    assert card.extra["note"].startswith("random weights")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.keras"]  # no partial files left


def test_export_refuses_a_card_that_does_not_fit(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="3 outputs but 2 labels"):
        export_model(tiny_model, tmp_path / "a", name="a", labels=("X", "Y"), backbone="tiny")
    with pytest.raises(ValueError, match="not a layer"):
        export_model(tiny_model, tmp_path / "b", name="b", labels=TINY_LABELS, backbone="tiny", cam_layer="nope")
    with pytest.raises(ValueError, match="overwrite typed fields"):
        export_model(tiny_model, tmp_path / "c", name="c", labels=TINY_LABELS, backbone="tiny", extra={"name": "x"})


# -- loading --------------------------------------------------------------------------------

def test_load_returns_the_model_and_card(folder):
    loaded = load_classifier(folder)
    assert loaded.name == "tiny" and loaded.folder == folder
    assert tuple(loaded.model.input_shape) == (None, SIZE, SIZE, 1)


def test_tampered_weights_are_refused_before_loading(tmp_path, folder):
    copy = _copy_folder(folder, tmp_path / "tampered")
    tamper_weights(copy)
    with pytest.raises(ModelLoadError, match=r"weights of model tiny do not match their recorded checksum \(file changed or corrupt\)"):
        load_classifier(copy)


def test_missing_weights_and_card_give_clear_errors(tmp_path, folder):
    copy = _copy_folder(folder, tmp_path / "missing")
    (copy / WEIGHTS_FILENAME).unlink()
    with pytest.raises(ModelLoadError, match="weights file model.keras of model tiny is missing"):
        load_classifier(copy)
    (copy / "model.json").unlink()
    with pytest.raises(ModelLoadError, match="has no model.json"):
        load_classifier(copy)


def test_unreadable_weights_with_a_valid_checksum_name_the_model(tmp_path, folder):
    copy = _copy_folder(folder, tmp_path / "garbage")
    (copy / WEIGHTS_FILENAME).write_bytes(b"not a keras file")
    card = json.loads((copy / "model.json").read_text())
    card["weights_sha256"] = sha256_file(copy / WEIGHTS_FILENAME)
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="model tiny could not be loaded"):
        load_classifier(copy)


def test_weights_outside_the_folder_are_refused(tmp_path, folder):
    copy = _copy_folder(folder, tmp_path / "escape")
    card = json.loads((copy / "model.json").read_text())
    card["weights_file"] = "../elsewhere.keras"
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="outside its folder"):
        load_classifier(copy)


def test_a_card_that_does_not_describe_the_model_is_refused(tmp_path, folder):
    copy = _copy_folder(folder, tmp_path / "wrong_size")
    card = json.loads((copy / "model.json").read_text())
    card["input_size"] = 64
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="its card says"):
        load_classifier(copy)


# -- inference ------------------------------------------------------------------------------

def test_predict_matches_the_keras_model(engine, tiny_model, batch):
    probs = engine.predict(batch)
    assert probs.shape == (5, 3)
    np.testing.assert_allclose(probs, np.asarray(tiny_model(batch, training=False)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_is_traced_once_for_every_batch_size(engine, batch):
    for n in (1, 2, 5):
        engine.predict(batch[:n])
    assert engine._predict_fn.experimental_get_tracing_count() == 1
    engine.predict_and_cam(batch[0])
    engine.predict_and_cam(batch[1], class_index=2)
    assert engine._cam_fn("relu").experimental_get_tracing_count() == 1


def test_batched_predictions_equal_single_ones(engine, batch):
    many = engine.predict_many(batch, batch_size=2)
    singles = np.concatenate([engine.predict(item) for item in batch])
    np.testing.assert_allclose(many, singles, rtol=1e-5, atol=1e-6)
    images = [make_xray(48, seed) for seed in range(3)]
    from_images = engine.predict_images(images, batch_size=2)
    np.testing.assert_allclose(from_images, engine.predict(np.stack([model_input(i, SIZE) for i in images])), rtol=1e-5, atol=1e-6)


def test_fused_probabilities_equal_predict(engine, batch):
    for method in ("gradcam", "gradcam++", "hirescam", "cam"):
        probs, cam = engine.predict_and_cam(batch[0], method=method)
        np.testing.assert_allclose(probs, engine.predict(batch[0])[0], rtol=1e-5, atol=1e-6)
        assert cam.shape == (8, 8)


def test_temperature_scales_the_logits(tmp_path, tiny_model, engine, batch):
    folder = make_model_folder(tmp_path, "warm", input_size=SIZE, temperature=2.0, model=tiny_model)
    hot = InferenceEngine(load_classifier(folder))
    base = engine.predict(batch).astype(np.float64)
    expected = np.exp(np.log(base) / 2.0)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hot.predict(batch), expected, rtol=1e-4, atol=1e-6)
    probs, _ = hot.predict_and_cam(batch[0])
    np.testing.assert_allclose(probs, expected[0], rtol=1e-4, atol=1e-6)


def test_invalid_requests_raise_inference_errors(engine, batch):
    with pytest.raises(InferenceError, match="unknown heat-map method"):
        engine.predict_and_cam(batch[0], method="magic")
    with pytest.raises(InferenceError, match="no layer named"):
        engine.predict_and_cam(batch[0], layer="nope")
    with pytest.raises(InferenceError, match="out of range"):
        engine.predict_and_cam(batch[0], class_index=3)
    with pytest.raises(InferenceError, match="expects input"):
        engine.predict(np.zeros((1, 16, 16, 1), np.float32))
    with pytest.raises(InferenceError, match="one image at a time"):
        engine.predict_and_cam(batch[:2])


def test_engine_exposes_labels_size_and_layers(engine):
    assert engine.labels == TINY_LABELS and engine.input_size == SIZE
    assert engine.conv_layers[0] == "relu" == engine.default_layer
    assert set(engine.conv_layers) == {"relu", "pool2_pool", "conv2_relu", "pool1_pool", "conv1_relu"}
    quarter, half = SIZE // 4, SIZE // 2
    assert engine.layer_grids == {"relu": (quarter, quarter), "pool2_pool": (quarter, quarter),
                                  "conv2_relu": (half, half), "pool1_pool": (half, half), "conv1_relu": (SIZE, SIZE)}


def test_run_request_packages_frozen_results(engine):
    image = make_xray(64, seed=5, frame_index=2)
    prediction, cam = run_request(engine, InferenceRequest(7, image, None, "gradcam", None))
    assert prediction.request_id == cam.request_id == 7
    assert prediction.image_key == cam.image_key == image_key(image) == f"{image.sha256}#2"
    assert prediction.model_name == cam.model_name == "tiny" and prediction.labels == TINY_LABELS
    assert cam.class_index == prediction.top_index and cam.layer == "relu" and cam.method == "gradcam"
    assert not cam.cam.flags.writeable and cam.cam.dtype == np.float32
    only_prediction, no_cam = run_request(engine, InferenceRequest(8, image, method=None))
    assert no_cam is None
    np.testing.assert_allclose(only_prediction.probabilities, prediction.probabilities, rtol=1e-5)


def test_core_model_modules_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import cxrviewer.core.model.runtime, cxrviewer.core.model.registry, cxrviewer.core.xai.cam\n"
        "import cxrviewer.core.model.device, cxrviewer.core.model.export, cxrviewer.core.xai.overlay\n"
        "bad = [m for m in ('tensorflow', 'keras', 'PySide6', 'matplotlib') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.slow
def test_real_densenet_layout_gradcam_equals_cam(tmp_path):
    """The real build_classifier (random weights, 64 px): layer names, loading, CAM identity."""
    from cxrviewer.core.model.architecture import build_classifier

    model = build_classifier(3, input_size=64, backbone="densenet121", weights=None)
    folder = tmp_path / "densenet"
    export_model(model, folder, name="densenet", labels=TINY_LABELS, backbone="densenet121")
    engine = InferenceEngine(load_classifier(folder))
    engine.warm_up()
    assert engine.default_layer == "relu" == engine.cam_layer_for_dense_weights
    assert "conv5_block16_concat" in engine.conv_layers
    # the dense block ends the layer chooser lists first, on 64 px input: 2, 4, 8 and 16 cells
    assert [engine.layer_grids[name] for name in ("relu", "pool4_relu", "pool3_relu", "pool2_relu")] == [
        (2, 2), (4, 4), (8, 8), (16, 16)]
    x = np.random.default_rng(0).uniform(0, 255, (64, 64, 1)).astype(np.float32)
    _, grad = engine.predict_and_cam(x, 1, "relu", "gradcam")
    _, cam = engine.predict_and_cam(x, 1, "relu", "cam")
    h, w = cam.shape
    np.testing.assert_allclose(grad, cam / (h * w), rtol=1e-3, atol=1e-6 * max(cam.max(), 1e-6))
    _, other = engine.predict_and_cam(x, 1, "conv4_block24_concat", "gradcam")
    assert other.shape == (4, 4)
