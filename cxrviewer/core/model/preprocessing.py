"""The one preprocessing path from an image to model input, shared by viewer and trainer.

The model sees the radiograph as the viewer shows it on opening: default window, correct
polarity (lungs dark), 8-bit gray; the whole image resized to a square input without
cropping (aspect ratio not kept, as in the training data). Intensity normalisation lives
inside the model graph (see `architecture.py`), so this function's output is plain
0–255 float gray and the same for every backbone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from cxrviewer.core.errors import InferenceError
from cxrviewer.core.imaging import default_display
from cxrviewer.core.types import XrayImage


@dataclass(frozen=True)
class PreprocessingSpec:
    """What `model_input` does, recorded in every model card."""

    input_size: int
    channels: int = 1
    resize: str = "whole image to input_size x input_size, cv2.INTER_AREA, no crop, aspect ratio not kept"
    intensity: str = "8-bit display image at the default window, MONOCHROME1 inverted; float 0-255"
    normalisation: str = "in-graph: gray replicated to 3 channels, ImageNet mean/std (torch mode)"
    standardisation: str = "none"   # or "equalise": in-graph histogram equalisation first (core.model.intensity)

    def to_dict(self) -> dict[str, object]:
        fields = asdict(self)
        if self.standardisation == "none":
            del fields["standardisation"]   # the cards written before it existed stay byte for byte
        else:
            fields["standardisation"] = (
                "in-graph, before everything else: per-image histogram equalisation (each pixel becomes "
                "255 x the fraction of every 4th pixel at or below it), so a monotone change of "
                "brightness, contrast or gamma does not change what the network sees")
        return fields


def resize_display(display_u8: np.ndarray, input_size: int) -> np.ndarray:
    """Resize an 8-bit gray display image to input_size × input_size (uint8)."""
    if display_u8.ndim != 2:
        raise ValueError(f"expected a 2-D gray image, got shape {display_u8.shape}")
    height, width = display_u8.shape
    if (height, width) == (input_size, input_size):
        return np.ascontiguousarray(display_u8)
    shrinking = height >= input_size and width >= input_size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(display_u8, (input_size, input_size), interpolation=interpolation)


def to_model_array(resized_u8: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (N, H, W) → float32 with a trailing channel axis, values 0–255."""
    return resized_u8.astype(np.float32)[..., np.newaxis]


def model_image(image: XrayImage, input_size: int) -> np.ndarray:
    """One image → uint8 (input_size, input_size): what the model sees, before the float cast.

    The trainer caches these (uint8 is a quarter of float32) and the viewer casts them at once:
    one function, so the two cannot drift apart.
    """
    return resize_display(default_display(image), input_size)


def model_input(image: XrayImage, input_size: int) -> np.ndarray:
    """One image → float32 array (input_size, input_size, 1) for the model."""
    return to_model_array(model_image(image, input_size))


def model_batch(batch: np.ndarray, input_size: int, model_name: str) -> np.ndarray:
    """Model input(s) as one contiguous float32 batch (N, S, S, 1); a single (S, S, 1) input gets N = 1.

    InferenceError naming the model when the shape is not the model's input."""
    array = np.asarray(batch, dtype=np.float32)
    if array.ndim == 3:
        array = array[np.newaxis]
    expected = (input_size, input_size, 1)
    if array.ndim != 4 or array.shape[1:] != expected:
        raise InferenceError(f"model {model_name} expects input {expected}, got {array.shape}")
    return np.ascontiguousarray(array)
