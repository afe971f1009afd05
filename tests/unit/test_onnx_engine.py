"""ONNX Runtime and TensorFlow give the same probabilities and maps (the fast path is exact at the
GAP input layer); the ONNX files are checksum-verified; ModelEngine routes other layers to TensorFlow.

Tolerances (core.model.onnx_engine): probabilities 1e-4 absolute, maps 1e-3 of their maximum.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.errors import ModelLoadError
from cxrviewer.core.model.engine import ONNX_RUNTIME, TENSORFLOW, ModelEngine
from cxrviewer.core.model.onnx_engine import (
    CAM_RELATIVE_TOLERANCE,
    PROBABILITY_TOLERANCE,
    OnnxEngine,
    OnnxExport,
)
from cxrviewer.core.model.preprocessing import model_input
from cxrviewer.core.model.runtime import InferenceEngine, load_classifier, read_card
from cxrviewer.core.xai.cam import CAM, METHODS
from tests.model_factory import build_tiny_classifier, make_model_folder, make_xray

pytest.importorskip("tf2onnx", reason="tf2onnx (dev extra) exports the ONNX model")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from trainer.onnx_export import export_onnx

    root = tmp_path_factory.mktemp("onnx-models")
    folder = make_model_folder(root, "tiny", model=build_tiny_classifier(3, 32, seed=3))
    export_onnx(folder)
    return folder


def _inputs(size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    images = [make_xray(96, seed=seed) for seed in range(3)]
    return [model_input(image, size) for image in images] + [rng.uniform(0, 255, (size, size, 1)).astype(np.float32)]


def test_export_records_both_files_and_the_check_in_the_card(exported):
    entry = json.loads((exported / "model.json").read_text())["onnx"]
    assert (exported / entry["file"]).is_file() and (exported / entry["head_file"]).is_file()
    check = entry["checked_against_tensorflow"]
    assert check["probability_max_abs_diff"] <= PROBABILITY_TOLERANCE
    assert check["cam_max_relative_diff"] <= CAM_RELATIVE_TOLERANCE


def test_onnx_and_tensorflow_agree_on_probabilities_and_every_map_method(exported):
    card = read_card(exported)
    fast = OnnxEngine(exported, card, OnnxExport.from_card(card))
    reference = InferenceEngine(load_classifier(exported), xla=False)
    layer = reference.cam_layer_for_dense_weights
    assert fast.cam_layer_for_dense_weights == layer
    assert fast.conv_layers == reference.conv_layers and fast.layer_grids == reference.layer_grids
    for x in _inputs(card.input_size):
        np.testing.assert_allclose(fast.predict(x), reference.predict(x), atol=PROBABILITY_TOLERANCE)
        for method in METHODS:
            for class_index in (None, 2):
                p_fast, cam_fast = fast.predict_and_cam(x, class_index, layer, method)
                p_ref, cam_ref = reference.predict_and_cam(x, class_index, layer, method)
                np.testing.assert_allclose(p_fast, p_ref, atol=PROBABILITY_TOLERANCE)
                assert cam_fast.shape == cam_ref.shape
                scale = max(float(cam_ref.max()), 1e-6)
                assert float(np.abs(cam_fast - cam_ref).max()) / scale <= CAM_RELATIVE_TOLERANCE, method


def test_batches_match_single_images(exported):
    card = read_card(exported)
    fast = OnnxEngine(exported, card, OnnxExport.from_card(card))
    inputs = _inputs(card.input_size)
    batch = fast.predict_many(np.stack(inputs), batch_size=3)
    singles = np.concatenate([fast.predict(x) for x in inputs])
    np.testing.assert_allclose(batch, singles, atol=1e-6)


def test_a_changed_onnx_file_is_refused(exported, tmp_path):
    copy = Path(shutil.copytree(exported, tmp_path / "tiny"))
    with open(copy / "model.onnx", "r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelLoadError, match="model.onnx of model tiny does not match its recorded checksum"):
        ModelEngine.open(copy)


def test_model_engine_uses_onnx_first_and_tensorflow_for_other_layers(exported):
    engine = ModelEngine.open(exported, xla=False, trace_lazily=True)
    assert engine.runtime == ONNX_RUNTIME and not engine.tensorflow_loaded
    x = _inputs(engine.input_size)[0]
    engine.predict_and_cam(x, None, engine.default_layer, "gradcam")
    assert not engine.tensorflow_loaded          # the last block needs no gradients
    probabilities, cam = engine.predict_and_cam(x, None, "conv1_relu", "gradcam")
    assert engine.tensorflow_loaded and cam.shape == (32, 32)
    assert engine.has_untraced                   # ran eagerly; traced in idle time
    assert engine.trace_pending() and not engine.has_untraced
    again, cam_traced = engine.predict_and_cam(x, None, "conv1_relu", "gradcam")
    np.testing.assert_allclose(again, probabilities, atol=1e-5)
    np.testing.assert_allclose(cam_traced, cam, rtol=1e-3, atol=1e-6)


def test_a_folder_without_onnx_runs_on_tensorflow(tmp_path):
    folder = make_model_folder(tmp_path, "plain", model=build_tiny_classifier(3, 32, seed=4))
    engine = ModelEngine.open(folder)
    assert engine.runtime == TENSORFLOW and engine.tensorflow_loaded
    assert engine.predict(np.zeros((32, 32, 1), np.float32)).shape == (1, 3)


def test_the_fast_path_does_not_import_tensorflow(exported):
    import subprocess

    code = (
        "import sys\n"
        "import numpy as np\n"
        "from cxrviewer.core.model.engine import ModelEngine\n"
        f"engine = ModelEngine.open({str(exported)!r})\n"
        "p, cam = engine.predict_and_cam(np.zeros((32, 32, 1), np.float32))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pneumonia3", "covid3"])
def test_bundled_models_agree_between_runtimes_on_real_radiographs(name, bundled_models):
    from cxrviewer.core.io import load_image
    from tests.shared_data import shared_images

    folder = bundled_models / name
    card = read_card(folder)
    if OnnxExport.from_card(card) is None:
        pytest.fail(f"the bundled {name} has no ONNX export (run cxr-train export-onnx --model {folder})")
    fast = OnnxEngine(folder, card, OnnxExport.from_card(card))
    reference = InferenceEngine(load_classifier(folder), xla=False)
    paths = shared_images(4)
    inputs = [model_input(load_image(path), card.input_size) for path in paths] or _inputs(card.input_size)
    for x in inputs:
        for method in (m for m in METHODS if m != CAM or fast.cam_layer_for_dense_weights):
            p_fast, cam_fast = fast.predict_and_cam(x, None, None, method)
            p_ref, cam_ref = reference.predict_and_cam(x, None, None, method)
            np.testing.assert_allclose(p_fast, p_ref, atol=PROBABILITY_TOLERANCE)
            assert float(np.abs(cam_fast - cam_ref).max()) / max(float(cam_ref.max()), 1e-6) <= CAM_RELATIVE_TOLERANCE
