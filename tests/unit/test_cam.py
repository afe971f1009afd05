"""CAM methods: pure functions on synthetic arrays, and the Grad-CAM == CAM identity on a real (tiny) model."""
from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.errors import InferenceError
from cxrviewer.core.xai import cam as cams


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.fixture
def arrays():
    activations = np.abs(_random((5, 6, 4), 0))  # post-ReLU activations are >= 0
    gradients = _random((5, 6, 4), 1)
    return activations, gradients


def test_grad_cam_is_relu_of_mean_gradient_weighted_sum(arrays):
    a, g = arrays
    expected = np.maximum(sum(g[..., k].mean() * a[..., k] for k in range(a.shape[2])), 0)
    np.testing.assert_allclose(cams.grad_cam(a, g), expected, rtol=1e-5, atol=1e-6)


def test_hires_cam_is_relu_of_elementwise_product(arrays):
    a, g = arrays
    np.testing.assert_allclose(cams.hires_cam(a, g), np.maximum((a * g).sum(axis=2), 0), rtol=1e-5, atol=1e-6)


def _pytorch_grad_cam_plus_plus(a_hwk: np.ndarray, g_hwk: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's grad_cam_plusplus.py formula, in its (B, C, H, W) layout."""
    activations = a_hwk.transpose(2, 0, 1)[np.newaxis].astype(np.float64)
    grads = g_hwk.transpose(2, 0, 1)[np.newaxis].astype(np.float64)
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = np.sum(activations, axis=(2, 3))
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3 + 1e-6)
    aij = np.where(grads != 0, aij, 0)
    weights = np.sum(np.maximum(grads, 0) * aij, axis=(2, 3))
    cam = (weights[:, :, None, None] * activations).sum(axis=1)[0]
    return np.maximum(cam, 0)


def test_grad_cam_plus_plus_matches_the_reference_formula(arrays):
    a, g = arrays
    np.testing.assert_allclose(cams.grad_cam_plus_plus(a, g), _pytorch_grad_cam_plus_plus(a, g), rtol=1e-4, atol=1e-6)


def test_zero_gradients_give_zero_maps(arrays):
    a, _ = arrays
    zeros = np.zeros_like(a)
    for method in cams.GRADIENT_METHODS:
        assert not cams.compute_cam(method, a, zeros).any()


def test_cam_from_dense_weights(arrays):
    a, _ = arrays
    kernel = _random((4, 3), 2)
    for c in range(3):
        np.testing.assert_allclose(
            cams.class_activation_map(a, kernel, c), np.maximum(a @ kernel[:, c], 0), rtol=1e-5, atol=1e-6
        )


def test_uniform_gradients_make_grad_cam_equal_cam_over_hw(arrays):
    """The GAP → Dense identity on synthetic arrays: dY/dA = W[:, c] / (h·w) everywhere."""
    a, _ = arrays
    kernel = _random((4, 2), 3)
    h, w = a.shape[:2]
    g = np.broadcast_to(kernel[:, 1] / (h * w), a.shape).astype(np.float32)
    np.testing.assert_allclose(cams.grad_cam(a, g), cams.class_activation_map(a, kernel, 1) / (h * w), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(cams.hires_cam(a, g), cams.grad_cam(a, g), rtol=1e-5, atol=1e-8)


def test_outputs_are_float32_non_negative_and_2d(arrays):
    a, g = arrays
    for method in cams.GRADIENT_METHODS:
        out = cams.compute_cam(method, a, g)
        assert out.shape == (5, 6) and out.dtype == np.float32 and (out >= 0).all()


def test_bad_inputs_are_rejected(arrays):
    a, g = arrays
    with pytest.raises(ValueError, match="unknown CAM method"):
        cams.compute_cam("scorecam", a, g)
    with pytest.raises(ValueError, match="do not match"):
        cams.grad_cam(a, g[:, :, :2])
    with pytest.raises(ValueError, match="needs gradients"):
        cams.compute_cam(cams.GRADCAM, a)
    with pytest.raises(ValueError, match="Dense kernel"):
        cams.class_activation_map(a, np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="Dense kernel and a class index"):
        cams.compute_cam(cams.CAM, a)


# -- on a tiny real model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier
    from tests.model_factory import make_model_folder

    folder = make_model_folder(tmp_path_factory.mktemp("models"), input_size=32)
    engine = InferenceEngine(load_classifier(folder))
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(7).uniform(0, 255, (32, 32, 1)).astype(np.float32)


def test_gap_input_layer_is_found(engine):
    assert engine.cam_layer_for_dense_weights == "relu" == engine.default_layer


@pytest.mark.parametrize("class_index", [0, 1, 2])
def test_grad_cam_on_gap_layer_equals_cam_from_dense_weights(engine, x, class_index):
    """Real GradientTape path vs the Dense-weights CAM: equal up to the exact 1/(h·w)."""
    probs_g, grad = engine.predict_and_cam(x, class_index, "relu", cams.GRADCAM)
    probs_c, cam = engine.predict_and_cam(x, class_index, "relu", cams.CAM)
    h, w = cam.shape
    assert (h, w) == (8, 8)
    assert cam.max() > 0
    np.testing.assert_allclose(grad, cam / (h * w), rtol=1e-4, atol=1e-6 * cam.max())
    np.testing.assert_allclose(probs_g, probs_c)


def test_gradient_at_gap_layer_is_dense_column_over_hw(engine, x):
    """The tape's raw gradient is W[:, c] / (h·w) at every position (dropout inactive)."""
    import tensorflow as tf

    probs, chosen, activations, gradients = engine._cam_fn("relu")(
        tf.constant(x[np.newaxis]), tf.constant(2, tf.int32)
    )
    h, w, k = activations.shape
    expected = np.broadcast_to(engine._kernel_numpy[:, 2] / (h * w), (h, w, k))
    np.testing.assert_allclose(gradients.numpy(), expected, rtol=1e-4, atol=1e-7)
    assert int(chosen) == 2


@pytest.mark.parametrize("layer, size", [("conv1_relu", 32), ("pool1_pool", 16), ("conv2_relu", 16), ("pool2_pool", 8)])
@pytest.mark.parametrize("method", cams.GRADIENT_METHODS)
def test_other_layers_give_maps_of_their_own_size(engine, x, layer, size, method):
    probs, cam = engine.predict_and_cam(x, None, layer, method)
    assert cam.shape == (size, size)
    assert cam.dtype == np.float32 and np.isfinite(cam).all() and (cam >= 0).all()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


def test_cam_from_dense_weights_is_refused_on_other_layers(engine, x):
    with pytest.raises(InferenceError, match="global average pooling"):
        engine.predict_and_cam(x, 0, "conv2_relu", cams.CAM)


def test_default_class_is_the_top_class(engine, x):
    probs, top_cam = engine.predict_and_cam(x, None)
    _, explicit = engine.predict_and_cam(x, int(np.argmax(probs)))
    np.testing.assert_array_equal(top_cam, explicit)
