"""In-graph intensity standardisation: per-image histogram equalisation of the 0–255 gray input.

A new detector, exposure or processing curve changes a radiograph's intensities monotonically
(brighter, darker, flatter) long before it changes the anatomy. Equalisation maps each pixel
to the fraction of the image at or below it, so any monotone change of intensity leaves the
model's input unchanged up to 8-bit rounding. It lives in the graph (like the ImageNet
normalisation) so that the viewer, the trainer, every Keras backend and the ONNX export run
the same arithmetic; `equalise_reference` is the numpy statement of it for tests.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

INTENSITY_MODES = ("none", "equalise")
EQUALISE_STRIDE = 4   # the histogram is taken over every 4th pixel in each direction


def equalise_reference(image_u8: np.ndarray, stride: int = EQUALISE_STRIDE) -> np.ndarray:
    """What the layer computes, for one (H, W) image: 255 × P(sample pixel ≤ pixel), float32."""
    sample = image_u8[::stride, ::stride].ravel()
    cdf = np.searchsorted(np.sort(sample), np.arange(256), side="right") / sample.size
    return (255.0 * cdf[image_u8.astype(np.int64)]).astype(np.float32)


def _layer_class() -> type:
    import keras

    @keras.saving.register_keras_serializable(package="cxrviewer")
    class HistogramEqualisation(keras.layers.Layer):  # type: ignore[misc]  # Keras is untyped
        """(N, H, W, 1) gray 0–255 → the same shape, each image histogram-equalised to 0–255."""

        def __init__(self, stride: int = EQUALISE_STRIDE, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, inputs: Any) -> Any:
            ops = keras.ops
            height, width = int(inputs.shape[1]), int(inputs.shape[2])
            levels = ops.cast(ops.round(ops.clip(inputs, 0.0, 255.0)), "int32")
            n_sample = -(-height // self.stride) * -(-width // self.stride)   # ceil × ceil
            sample = ops.reshape(levels[:, :: self.stride, :: self.stride, 0], (-1, 1, n_sample))
            grey = ops.reshape(ops.arange(256, dtype="int32"), (1, 256, 1))
            cdf = ops.mean(ops.cast(ops.less_equal(sample, grey), "float32"), axis=2)   # (N, 256)
            mapped = ops.take_along_axis(cdf, ops.reshape(levels, (-1, height * width)), axis=1)
            return ops.reshape(255.0 * mapped, (-1, height, width, 1))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "stride": self.stride}

    return HistogramEqualisation


@functools.cache
def histogram_equalisation_layer() -> type:
    """The Keras layer class, created once (Keras is imported lazily) and registered so that saved
    models load in safe mode: call it before loading a model (`architecture.load_keras_model` does)."""
    return _layer_class()
