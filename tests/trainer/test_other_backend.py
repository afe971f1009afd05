"""A model trained under another Keras backend (JAX, as on the lent GPU machine) loads in the
viewer's TensorFlow and predicts the same. The model carries the in-graph histogram
equalisation (the one custom layer), so every layer kind a bundled model may hold is covered."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.test_end_to_end import SIZE, _synthetic_kermany, _train_args

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")]

TRAIN_UNDER_JAX = """
import sys, numpy as np
import keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from trainer.cli import main
run_dir, images = sys.argv[1], sys.argv[2]
assert main(sys.argv[3:]) == 0
from trainer.train import load_trained, predict_images
np.save(run_dir + "/jax_probs.npy", predict_images(load_trained(run_dir), np.load(images)))
"""


def test_model_trained_under_jax_predicts_the_same_in_tensorflow(tmp_path: Path) -> None:
    from trainer.train import load_trained, predict_images

    tree = _synthetic_kermany(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, SIZE, SIZE), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    args = _train_args(tree, run_dir, "--intensity", "equalise")
    done = subprocess.run([sys.executable, "-c", TRAIN_UNDER_JAX, str(run_dir), str(tmp_path / "images.npy"), *args],
                          env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    import keras

    assert keras.backend.backend() == "tensorflow"
    tf_probs = predict_images(load_trained(run_dir), images)
    np.testing.assert_allclose(tf_probs, np.load(run_dir / "jax_probs.npy"), atol=1e-4)
    assert np.allclose(tf_probs.sum(axis=1), 1.0, atol=1e-4)
