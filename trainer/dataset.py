"""Decoded-image cache and tf.data pipelines (with radiograph-appropriate augmentation)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cxrviewer.core.imaging import default_display
from cxrviewer.core.io import load_image
from cxrviewer.core.model.preprocessing import resize_display
from trainer.data import Sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """Small geometric and intensity changes; no horizontal flip unless asked (anatomy is not symmetric)."""

    rotation_deg: float = 7.0
    shift: float = 0.06
    zoom: float = 0.10
    brightness: float = 0.10
    contrast: float = 0.15
    horizontal_flip: bool = False


def decode_samples(samples: Sequence[Sample], input_size: int, cache_file: Path | None = None) -> np.ndarray:
    """All images as uint8 (N, S, S) through the viewer's own preprocessing, cached as .npy."""
    if cache_file is not None and cache_file.exists():
        cached = np.load(cache_file)
        if cached.shape == (len(samples), input_size, input_size):
            return cached
    from tqdm import tqdm

    images = np.empty((len(samples), input_size, input_size), dtype=np.uint8)
    for index, sample in enumerate(tqdm(samples, desc="decode", unit="img", mininterval=5)):
        images[index] = resize_display(default_display(load_image(sample.path)), input_size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache_file, images)
    return images


def build_augmenter(config: AugmentConfig, seed: int) -> "object":
    import keras

    layers = [
        keras.layers.RandomRotation(config.rotation_deg / 360.0, fill_mode="constant", seed=seed),
        keras.layers.RandomTranslation(config.shift, config.shift, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom((-config.zoom, config.zoom), fill_mode="constant", seed=seed + 2),
        keras.layers.RandomBrightness(config.brightness, value_range=(0.0, 255.0), seed=seed + 3),
        keras.layers.RandomContrast(config.contrast, value_range=(0.0, 255.0), seed=seed + 4),
    ]
    if config.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 5))
    return keras.Sequential(layers, name="augment")


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 42,
    sample_weights: np.ndarray | None = None,
) -> "object":
    """uint8 (N,S,S) + int labels → batches of (float32 (B,S,S,1) 0–255, one-hot[, weight])."""
    import tensorflow as tf

    x = images[..., np.newaxis]
    y = np.eye(n_classes, dtype=np.float32)[labels]
    tensors = (x, y) if sample_weights is None else (x, y, sample_weights.astype(np.float32))
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=False)
    dataset = dataset.map(lambda a, *rest: (tf.cast(a, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        augmenter = build_augmenter(augment, seed)
        dataset = dataset.map(
            lambda a, *rest: (tf.clip_by_value(augmenter(a, training=True), 0.0, 255.0), *rest),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
