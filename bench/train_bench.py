"""Training throughput: the trainer's input pipeline and compile settings against a plain `model.fit`.

trainer: `trainer.dataset.make_dataset` (tf.data, shuffling, augmentation) and the loss,
metrics and class weights `trainer/train.py` compiles with; plain: the same architecture
fitted on in-memory float arrays with only a loss. One epoch of each per round, alternating;
the first epoch of each (tracing) is not timed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.timing import Timing, time_call

N_CLASSES = 3


@dataclass(frozen=True)
class TrainResult:
    trainer: Timing   # seconds per image
    plain: Timing     # seconds per image
    images_per_epoch: int
    input_size: int
    description: str


def run(quick: bool, runs: int, steps: int, batch_size: int, input_size: int) -> TrainResult:
    import keras

    from bench.models import build
    from trainer.dataset import AugmentConfig, make_dataset

    count = steps * batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, input_size, input_size), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, count)
    onehot = np.eye(N_CLASSES, dtype=np.float32)[labels]
    weights = {c: float(count / (N_CLASSES * max(1, int((labels == c).sum())))) for c in range(N_CLASSES)}

    trainer_model, description = build(quick, input_size)
    trainer_model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    dataset = make_dataset(images, labels, N_CLASSES, batch_size, training=True, augment=AugmentConfig(), seed=0)
    plain_model, _ = build(quick, input_size)
    plain_model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
    x = images.astype(np.float32)[..., np.newaxis]

    def fit_trainer() -> None:
        trainer_model.fit(dataset, epochs=1, class_weight=weights, verbose=0)

    def fit_plain() -> None:
        plain_model.fit(x, onehot, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)

    fit_trainer()
    fit_plain()
    trainer_runs, plain_runs = [], []
    for _ in range(max(1, runs)):
        trainer_runs.append(time_call(fit_trainer) / count)
        plain_runs.append(time_call(fit_plain) / count)
    return TrainResult(Timing(tuple(trainer_runs)), Timing(tuple(plain_runs)), count, input_size, description)
