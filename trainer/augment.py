"""Training augmentation in numpy/OpenCV, so the input pipeline runs under any Keras backend.

Two families. *Geometric* (small rotation, shift, zoom; flips only when asked: anatomy is not
symmetric). *Acquisition* — what changes between hospitals, devices and years rather than
between patients: gamma and contrast curves, blur or sharpening, sensor noise, JPEG
re-compression and small crops. The held-back test of the first pediatric model showed it
over-calling pneumonia on normals from another period: these are the changes it never saw.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 7.0
    shift: float = 0.06
    zoom: float = 0.10
    brightness: float = 0.10            # fraction of 255, added
    contrast: float = 0.15              # factor range around the mean
    horizontal_flip: bool = False
    acquisition: bool = False           # the second family below, each applied with `p_acquisition`
    p_acquisition: float = 0.5
    gamma: float = 0.35                 # log-uniform gamma in [1/(1+g), 1+g]
    blur_sigma: float = 1.2             # Gaussian blur up to this sigma ...
    sharpen: float = 1.0                # ... or unsharp masking up to this amount
    noise_std: float = 6.0              # Gaussian noise up to this std (0-255 scale)
    jpeg_quality: tuple[int, int] = (30, 95)
    crop: float = 0.08                  # crop up to this fraction per side, resized back


def _affine(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    angle = rng.uniform(-config.rotation_deg, config.rotation_deg)
    scale = 1.0 + rng.uniform(-config.zoom, config.zoom)
    matrix = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), angle, scale)
    matrix[:, 2] += rng.uniform(-config.shift, config.shift, size=2) * size
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _acquisition(image: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    p = config.p_acquisition
    size = image.shape[0]
    if rng.random() < p and config.crop > 0:
        top, bottom, left, right = (int(rng.uniform(0, config.crop) * size) for _ in range(4))
        cropped = image[top:size - bottom, left:size - right]
        image = cv2.resize(cropped, (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < p:
        gamma = float(np.exp(rng.uniform(-np.log1p(config.gamma), np.log1p(config.gamma))))
        image = 255.0 * np.power(np.clip(image, 0.0, 255.0) / 255.0, gamma)
    if rng.random() < p:
        # A sigmoid contrast curve centred near the middle gray: film/processing differences.
        gain = rng.uniform(3.0, 8.0)
        centre = rng.uniform(0.4, 0.6)
        u = np.clip(image, 0.0, 255.0) / 255.0
        low, high = 1 / (1 + np.exp(gain * centre)), 1 / (1 + np.exp(-gain * (1 - centre)))
        curved = (1 / (1 + np.exp(-gain * (u - centre))) - low) / (high - low)
        mix = rng.uniform(0.3, 1.0)
        image = 255.0 * ((1 - mix) * u + mix * curved)
    if rng.random() < p:
        sigma = rng.uniform(0.3, config.blur_sigma)
        blurred = cv2.GaussianBlur(image, (0, 0), sigma)
        image = blurred if rng.random() < 0.5 else image + rng.uniform(0.2, config.sharpen) * (image - blurred)
    if rng.random() < p:
        image = image + rng.normal(0.0, rng.uniform(1.0, config.noise_std), image.shape).astype(np.float32)
    if rng.random() < p:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    return image


def augment_image(image_u8: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (S,S) image → float32 (S,S) in 0–255, augmented."""
    image = image_u8.astype(np.float32)
    if config.acquisition:
        image = _acquisition(image, config, rng)
    image = _affine(image, config, rng)
    if config.horizontal_flip and rng.random() < 0.5:
        image = image[:, ::-1]
    if config.brightness:
        image = image + rng.uniform(-config.brightness, config.brightness) * 255.0
    if config.contrast:
        mean = float(image.mean())
        image = (image - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    return np.clip(image, 0.0, 255.0).astype(np.float32)
