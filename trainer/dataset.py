"""Decoded-image cache and the training input pipeline (numpy + OpenCV: any Keras backend)."""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cxrviewer.core.io import load_image
from cxrviewer.core.model.preprocessing import model_image, to_model_array
from trainer.augment import AugmentConfig, augment_image
from trainer.data import Sample

__all__ = ["AugmentConfig", "decode_samples", "make_dataset"]
log = logging.getLogger(__name__)


def decode_samples(samples: Sequence[Sample], input_size: int, cache_file: Path | None = None) -> np.ndarray:
    """All images as uint8 (N, S, S) through the viewer's own preprocessing, cached as .npy."""
    if cache_file is not None and cache_file.exists():
        cached = np.load(cache_file)
        if cached.shape == (len(samples), input_size, input_size):
            return cached
    from tqdm import tqdm

    images = np.empty((len(samples), input_size, input_size), dtype=np.uint8)
    for index, sample in enumerate(tqdm(samples, desc="decode", unit="img", mininterval=5)):
        images[index] = model_image(load_image(sample.path), input_size)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache_file, images)
    return images


def _batches_class() -> type:
    import keras

    class Batches(keras.utils.PyDataset):
        """Shuffled (training) or ordered batches of (float32 (B,S,S,1) 0–255, one-hot[, weight])."""

        def __init__(self, images: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int,
                     training: bool, augment: AugmentConfig | None, seed: int,
                     sample_weights: np.ndarray | None) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.images, self.labels = images, labels
            self.onehot = np.eye(n_classes, dtype=np.float32)[labels]
            self.batch_size, self.training, self.augment = batch_size, training, augment
            self.weights = None if sample_weights is None else sample_weights.astype(np.float32)
            self.seed, self.epoch = seed, 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if not self.training:
                return np.arange(len(self.images))
            return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))

        def __len__(self) -> int:
            return math.ceil(len(self.images) / self.batch_size)

        def __getitem__(self, index: int) -> tuple:
            chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            if self.training and self.augment is not None:
                rng = np.random.default_rng((self.seed, self.epoch, index))
                x = np.stack([augment_image(self.images[i], self.augment, rng) for i in chosen])[..., np.newaxis]
            else:
                x = to_model_array(self.images[chosen])
            y = self.onehot[chosen]
            return (x, y) if self.weights is None else (x, y, self.weights[chosen])

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return Batches


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    seed: int = 42,
    sample_weights: np.ndarray | None = None,
) -> object:
    """uint8 (N,S,S) + int labels → a keras.utils.PyDataset; deterministic per (seed, epoch, batch)."""
    return _batches_class()(images, labels, n_classes, batch_size, training, augment, seed, sample_weights)
