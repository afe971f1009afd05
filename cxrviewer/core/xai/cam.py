"""Class-activation map methods as small pure numpy functions (after pytorch-grad-cam).

Every method maps the target layer's activations A (h, w, k) — and, for the gradient
methods, dY_c/dA (h, w, k), where Y_c is the class SCORE (the pre-softmax logit of the
Dense head) — to a raw map (h, w) float32 >= 0. Maps are not normalised here: keeping the
raw scale is what lets the overlay offer an absolute colour scale (see `core/xai/overlay.py`).

With the GAP → (inactive) dropout → Dense head, dY_c/dA = W[:, c] / (h·w) at the layer
feeding GAP, so Grad-CAM there equals CAM / (h·w) — tested in tests/unit/test_cam.py.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

GRADCAM = "gradcam"
GRADCAM_PLUS_PLUS = "gradcam++"
HIRESCAM = "hirescam"
CAM = "cam"

METHOD_LABELS: dict[str, str] = {
    GRADCAM: "Grad-CAM",
    GRADCAM_PLUS_PLUS: "Grad-CAM++",
    HIRESCAM: "HiResCAM",
    CAM: "CAM (Dense weights)",
}
METHODS: tuple[str, ...] = tuple(METHOD_LABELS)
GRADIENT_METHODS: tuple[str, ...] = (GRADCAM, GRADCAM_PLUS_PLUS, HIRESCAM)


def _check(activations: np.ndarray, gradients: np.ndarray | None = None) -> np.ndarray:
    a = np.asarray(activations, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"activations must be (h, w, k), got shape {a.shape}")
    if gradients is not None and np.shape(gradients) != a.shape:
        raise ValueError(f"gradients {np.shape(gradients)} do not match activations {a.shape}")
    return a


def _weighted_sum(activations: np.ndarray, channel_weights: np.ndarray) -> np.ndarray:
    """ReLU(sum_k w_k · A_k) as float32 (h, w)."""
    cam = np.tensordot(activations, channel_weights.astype(np.float32), axes=([2], [0]))
    return np.maximum(cam, 0.0).astype(np.float32)


def grad_cam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.): channel weights = spatial mean of the gradients."""
    a = _check(activations, gradients)
    weights = np.asarray(gradients, dtype=np.float32).mean(axis=(0, 1))
    return _weighted_sum(a, weights)


def grad_cam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al.) with pytorch-grad-cam's approximation.

    The 2nd/3rd derivatives are replaced by powers of the gradient (exact for an
    exponential score):  alpha = g² / (2g² + sum_ij(A)·g³),  weights = sum_ij(alpha·ReLU(g)).
    """
    a = _check(activations, gradients)
    g = np.asarray(gradients, dtype=np.float64)
    g2 = g * g
    g3 = g2 * g
    sum_activations = a.astype(np.float64).sum(axis=(0, 1))  # (k,)
    alpha = g2 / (2.0 * g2 + sum_activations[np.newaxis, np.newaxis, :] * g3 + 1e-6)
    alpha = np.where(g != 0, alpha, 0.0)
    weights = (np.maximum(g, 0.0) * alpha).sum(axis=(0, 1))
    return _weighted_sum(a, weights)


def hires_cam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos & Carin): ReLU(sum_k g_k ⊙ A_k), element-wise, no spatial averaging."""
    a = _check(activations, gradients)
    cam = (a * np.asarray(gradients, dtype=np.float32)).sum(axis=2)
    return np.maximum(cam, 0.0).astype(np.float32)


def class_activation_map(activations: np.ndarray, dense_kernel: np.ndarray, class_index: int) -> np.ndarray:
    """CAM (Zhou et al.) for a GAP → Dense head: ReLU(A · W[:, c]). Only valid at the GAP input."""
    a = _check(activations)
    kernel = np.asarray(dense_kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != a.shape[2]:
        raise ValueError(
            f"the Dense kernel {kernel.shape} does not fit activations with {a.shape[2]} channels"
        )
    return _weighted_sum(a, kernel[:, class_index])


_GRADIENT_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    GRADCAM: grad_cam,
    GRADCAM_PLUS_PLUS: grad_cam_plus_plus,
    HIRESCAM: hires_cam,
}


def compute_cam(
    method: str,
    activations: np.ndarray,
    gradients: np.ndarray | None = None,
    dense_kernel: np.ndarray | None = None,
    class_index: int | None = None,
) -> np.ndarray:
    """Dispatch on `method` (one of METHODS); returns the raw (h, w) float32 map, >= 0."""
    if method == CAM:
        if dense_kernel is None or class_index is None:
            raise ValueError("CAM needs the Dense kernel and a class index")
        return class_activation_map(activations, dense_kernel, class_index)
    function = _GRADIENT_FUNCTIONS.get(method)
    if function is None:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    if gradients is None:
        raise ValueError(f"{METHOD_LABELS[method]} needs gradients")
    return function(activations, gradients)


def check_cam_request(method: str, layer: str, class_index: int | None, n_labels: int,
                      dense_cam_layer: str | None) -> None:
    """Raise InferenceError for a heat-map request no engine can answer (unknown method, CAM away
    from the GAP input, class out of range)."""
    from cxrviewer.core.errors import InferenceError

    if method not in METHODS:
        raise InferenceError(f"unknown heat-map method {method!r}; choose one of {', '.join(METHODS)}")
    if method == CAM and layer != dense_cam_layer:
        raise InferenceError(
            f"{METHOD_LABELS[CAM]} only works on the layer feeding global average pooling "
            f"({dense_cam_layer}); use Grad-CAM for layer {layer}"
        )
    if class_index is not None and not 0 <= class_index < n_labels:
        raise InferenceError(f"class index {class_index} is out of range for {n_labels} labels")
