"""The out-of-distribution gate: image checks, fitting and calibration, storage, and the engine's verdict."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.errors import ModelLoadError
from cxrviewer.core.model.card import ModelCard, sha256_file
from cxrviewer.core.ood_gate import OOD_CARD_KEY, OOD_FILENAME, OodGate, image_flag, input_flag
from cxrviewer.core.types import Window, XrayImage
from tests.model_factory import make_xray


def _image(pixels: np.ndarray, photometric: str = "MONOCHROME2", **metadata: str) -> XrayImage:
    return XrayImage(Path("x.dcm"), "x", pixels.astype(np.float32), Window(127.5, 255), (), photometric,
                     metadata=metadata)


# ------------------------------------------------------------------------------ image checks
@pytest.mark.parametrize("pixels, metadata, photometric, words", [
    (np.full((256, 256), np.nan), {}, "MONOCHROME2", "not numbers"),
    (np.zeros((0, 0)), {}, "MONOCHROME2", "empty"),
    (np.zeros((40, 40)), {}, "MONOCHROME2", "tiny"),
    (np.zeros((100, 400)), {}, "MONOCHROME2", "unlike any chest film"),
    (np.zeros((256, 256)), {}, "RGB", "colour"),
    (np.zeros((256, 256)), {"ViewPosition": "LL"}, "MONOCHROME2", "lateral"),
    (np.zeros((256, 256)), {"BodyPartExamined": "HAND"}, "MONOCHROME2", "Hand, not chest"),
    (np.zeros((256, 256)), {"Modality": "US"}, "MONOCHROME2", "modality US"),
])
def test_image_checks_name_the_problem(pixels, metadata, photometric, words):
    assert words in image_flag(_image(pixels, photometric, **metadata))


def test_a_frontal_chest_radiograph_passes_the_image_checks():
    image = replace(make_xray(256, seed=1), metadata={"ViewPosition": "PA", "BodyPartExamined": "CHEST", "Modality": "DX"})
    assert image_flag(image) == ""


def test_blank_inputs_are_flagged_and_textured_ones_are_not():
    assert "blank" in input_flag(np.full((32, 32, 1), 0.0, np.float32))
    assert "blank" in input_flag(np.full((32, 32, 1), 255.0, np.float32))
    assert input_flag(np.random.default_rng(0).uniform(0, 255, (32, 32, 1)).astype(np.float32)) == ""


# ------------------------------------------------------------------------------ the score
def _clusters(n: int, seed: int, shift: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    centres = np.array([[0.2] * 32, [0.6] * 32])
    features = np.abs(centres[labels] + shift + rng.normal(0, 0.05, (n, 32)))
    return features, np.array(["A", "B"])[labels]


def test_the_threshold_flags_about_five_percent_of_validation_and_all_of_a_shifted_set():
    train, labels = _clusters(2000, 0)
    validation, _ = _clusters(1000, 1)
    gate = OodGate.fit(train, labels, validation, components=16)
    assert np.mean(gate.scores(validation) > gate.threshold) == pytest.approx(0.05, abs=0.01)
    fresh, _ = _clusters(1000, 2)
    assert np.mean(gate.scores(fresh) > gate.threshold) < 0.1
    pattern = np.where(np.arange(32) % 2 == 0, 0.5, -0.15)    # unlike either class: a new direction
    shifted, _ = _clusters(200, 3, shift=pattern)
    assert np.all(gate.scores(shifted) > gate.threshold)
    verdict = gate.verdict(shifted[0])
    assert verdict.flagged and verdict.score > verdict.threshold and "unlike its training images" in verdict.reason
    assert not gate.verdict(fresh[np.argmin(gate.scores(fresh))]).flagged
    assert gate.verdict(fresh[0], flag="it is blank").reason == "it is blank"


def test_the_gate_is_stored_checked_and_loaded(tmp_path):
    train, labels = _clusters(500, 0)
    gate = OodGate.fit(train, labels, _clusters(200, 1)[0], components=8)
    gate.save(tmp_path / OOD_FILENAME)
    card = ModelCard("m", ("A", "B"), 32, "tiny", "relu", "model.keras", "0" * 64,
                     extra={OOD_CARD_KEY: {"file": OOD_FILENAME, "sha256": sha256_file(tmp_path / OOD_FILENAME)}})
    loaded = OodGate.load(tmp_path, card)
    np.testing.assert_allclose(loaded.scores(train[:20]), gate.scores(train[:20]), rtol=1e-4)
    assert loaded.threshold == pytest.approx(gate.threshold)
    with open(tmp_path / OOD_FILENAME, "ab") as handle:
        handle.write(b"changed")
    with pytest.raises(ModelLoadError, match="does not match its recorded checksum"):
        OodGate.load(tmp_path, card)
    assert OodGate.load(tmp_path, replace(card, extra={})) is None


# ------------------------------------------------------------------------------ the engine
@pytest.fixture(scope="module")
def gated_model(tmp_path_factory) -> Path:
    pytest.importorskip("tf2onnx", reason="tf2onnx (dev extra) exports the ONNX model")
    from tests.model_factory import make_gated_model_folder

    return make_gated_model_folder(tmp_path_factory.mktemp("gated"))


def test_every_prediction_carries_the_verdict(gated_model):
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.runtime import InferenceRequest, run_request

    engine = ModelEngine.open(gated_model)
    assert engine.ood_gate is not None
    prediction, _ = run_request(engine, InferenceRequest(1, make_xray(96, seed=500)))
    assert prediction.ood is not None and prediction.ood.score is not None
    assert prediction.ood.threshold == pytest.approx(engine.ood_gate.threshold)
    blank = _image(np.zeros((256, 256)))
    flagged, _ = run_request(engine, InferenceRequest(2, blank))
    assert flagged.outside_training_data and "blank" in flagged.ood.reason
    nan = _image(np.full((256, 256), np.nan))
    flagged, _ = run_request(engine, InferenceRequest(3, nan))
    assert flagged.outside_training_data and "not numbers" in flagged.ood.reason
    assert flagged.ood.as_json()["flagged"] is True and json.dumps(flagged.ood.as_json())
