"""Two-stage transfer learning (or one stage from scratch) with checkpoints and resume."""
from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cxrviewer.core.model.architecture import load_keras_model
from trainer.config import TrainConfig
from trainer.data import (
    Sample,
    cell_balanced_weights,
    class_weights,
    discover_folder_tree,
    group_balanced_weights,
    integrity_check,
    problems_table,
    read_manifest,
    read_split,
    split_by_patient,
    write_split,
)
from trainer.dataset import decode_samples, make_dataset

log = logging.getLogger(__name__)
SPLIT_FILE = "split.csv"
STATE_FILE = "state.json"
FINAL_MODEL = "final.keras"


@dataclass(frozen=True)
class PreparedData:
    labels: tuple[str, ...]
    samples: dict[str, list[Sample]]          # split -> samples
    images: dict[str, np.ndarray]             # split -> uint8 (N, S, S)
    targets: dict[str, np.ndarray]            # split -> int labels


def collect_samples(config: TrainConfig) -> list[Sample]:
    samples: list[Sample] = []
    # A multi-class task that names VIRAL (covid3) reads Kermany subtypes from file names.
    folder_task = "pneumonia3" if config.task == "folders" and "VIRAL" in config.labels else config.task
    for source in config.data:
        path = Path(source)
        if path.suffix.lower() == ".csv":
            samples += read_manifest(path)
        else:
            samples += discover_folder_tree(path, folder_task)
    if config.labels:
        samples = [s for s in samples if s.label in config.labels]
    if config.split_from:
        inherited = {str(s.path.resolve()): s.split for s in read_split(Path(config.split_from))}
        samples = [replace(s, split=inherited.get(str(s.path.resolve()), s.split)) for s in samples]
    if config.max_per_class:
        rng = np.random.default_rng(config.seed)
        by_cell: dict[tuple[str, str], list[Sample]] = {}
        for sample in samples:
            by_cell.setdefault((sample.source, sample.label), []).append(sample)
        samples = []
        for cell in sorted(by_cell):
            group = by_cell[cell]
            keep = rng.permutation(len(group))[: config.max_per_class]
            samples += [group[i] for i in sorted(keep)]
    return samples


def prepare_data(config: TrainConfig) -> PreparedData:
    """Discover → integrity pass → split by patient (written once, reused on resume) → decode."""
    run_dir = Path(config.run_dir)
    split_path = run_dir / SPLIT_FILE
    if split_path.exists():
        samples = read_split(split_path)
        log.info("reusing split %s (%d images)", split_path, len(samples))
    else:
        found = collect_samples(config)
        kept, problems = integrity_check(found, config.expected_size)
        (run_dir / "integrity.md").write_text(
            f"# Integrity check\n\n{len(found)} images found, {len(kept)} kept, "
            f"{len(problems)} excluded.\n\n{problems_table(problems)}\n", encoding="utf-8")
        if problems:
            log.warning("integrity: %d images excluded (see integrity.md)", len(problems))
        samples = split_by_patient(kept, config.fractions, config.seed)
        write_split(samples, split_path)
    labels = config.labels or tuple(sorted({s.label for s in samples}))
    index = {label: i for i, label in enumerate(labels)}
    by_split = {split: [s for s in samples if s.split == split] for split in ("train", "val", "test")}
    images = {
        split: decode_samples(items, config.input_size, run_dir / "cache" / f"{split}_{config.input_size}.npy")
        for split, items in by_split.items()
    }
    targets = {split: np.array([index[s.label] for s in items], dtype=np.int64) for split, items in by_split.items()}
    for split in by_split:
        counts = np.bincount(targets[split], minlength=len(labels)) if len(targets[split]) else []
        log.info("%s: %d images %s", split, len(by_split[split]), dict(zip(labels, map(int, counts))))
    return PreparedData(labels, by_split, images, targets)


class _NoStrategy:
    def scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def distribution_strategy(name: str) -> object:
    """tf.distribute strategy by flag: default, mirrored (multi-GPU), multiworker (TF_CONFIG).

    Under another Keras backend (jax, torch) only `default` exists: a no-op scope.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        if name != "default":
            raise ValueError(f"strategy {name!r} needs the TensorFlow backend")
        return _NoStrategy()
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "default":
        raise ValueError(f"unknown strategy {name!r}: default, mirrored or multiworker")
    return tf.distribute.get_strategy()


def _callbacks(config: TrainConfig, stage: str, started: float) -> list:
    import keras

    run_dir = Path(config.run_dir)

    class ProgressLog(keras.callbacks.Callback):
        """One log line every 25 batches with throughput, so a background run can be followed."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch_start = time.perf_counter()
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch % 25 == 0:
                elapsed = time.perf_counter() - self._epoch_start
                rate = (batch + 1) * config.batch_size / max(elapsed, 1e-6)
                log.info("%s epoch %d batch %d loss %.4f  %.1f img/s", stage, self._epoch + 1, batch,
                         (logs or {}).get("loss", float("nan")), rate)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            shown = {k: round(float(v), 4) for k, v in (logs or {}).items()}
            log.info("%s epoch %d done in %.0f s: %s", stage, epoch + 1,
                     time.perf_counter() - self._epoch_start, shown)

    class TimeBudget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if config.time_budget_min and (time.time() - started) / 60.0 > config.time_budget_min:
                log.warning("time budget of %.0f min spent: stopping %s", config.time_budget_min, stage)
                self.model.stop_training = True

    return [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup" / stage)),
        keras.callbacks.ModelCheckpoint(str(run_dir / f"{stage}_best.weights.h5"), monitor="val_auc",
                                        mode="max", save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience),
        *([keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3,
                                             patience=max(2, config.patience // 3), min_lr=1e-6)]
          if config.schedule == "plateau" else []),
        keras.callbacks.CSVLogger(str(run_dir / f"{stage}_log.csv"), append=True),
        ProgressLog(),
        TimeBudget(),
    ]


def _set_trainable(model: object, stage: str, unfreeze_last: int) -> None:
    import keras

    from cxrviewer.core.model.architecture import backbone_layer_names

    backbone = backbone_layer_names(model)
    if stage == "full":
        unfrozen = set(backbone)
    elif stage == "finetune" and unfreeze_last > 0:
        unfrozen = set(backbone[-unfreeze_last:])
    else:
        unfrozen = set()
    for name in backbone:
        layer = model.get_layer(name)
        # A pretrained backbone keeps its BatchNorm statistics frozen while fine-tuning.
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = name in unfrozen and (stage == "full" or not is_bn)


def _stages(config: TrainConfig) -> list[tuple[str, int, float]]:
    if config.init_from or not config.pretrained:
        return [("full", config.epochs, config.learning_rate)]
    return [("warmup", config.warmup_epochs, config.learning_rate),
            ("finetune", config.epochs, config.finetune_learning_rate)]


def _optimizer(config: TrainConfig, learning_rate: float, epochs: int, steps_per_epoch: int) -> object:
    """Adam or AdamW; a constant rate (reduced on plateau) or linear warm-up then cosine decay."""
    import keras

    rate: object = learning_rate
    if config.schedule == "cosine":
        total = max(1, epochs * steps_per_epoch)
        warmup = int(config.warmup_fraction * total)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate * 0.01, decay_steps=total - warmup, alpha=0.01,
            warmup_target=learning_rate, warmup_steps=warmup)
    elif config.schedule != "plateau":
        raise ValueError(f"unknown schedule {config.schedule!r}: plateau or cosine")
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay)
    if config.optimizer != "adam":
        raise ValueError(f"unknown optimizer {config.optimizer!r}: adam or adamw")
    return keras.optimizers.Adam(rate)


def _init_from(model: object, path: Path) -> None:
    """Every weight from a trained model of the same architecture (its input size may differ)."""

    source = load_keras_model(path)
    model.set_weights(source.get_weights())
    log.info("all weights initialised from %s", path)


def _read_state(run_dir: Path) -> dict:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {"done": []}


def train(config: TrainConfig, data: PreparedData | None = None) -> Path:
    """Train (resuming where a previous run stopped) and return the path of the final model."""
    import keras

    from cxrviewer.core.model.architecture import build_classifier

    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.json")
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    data = data or prepare_data(config)
    n_classes = len(data.labels)
    weights: dict[int, float] | None = None
    sample_weights = None
    if config.balance in ("source_label", "group_label"):
        balance = cell_balanced_weights if config.balance == "source_label" else group_balanced_weights
        sample_weights = balance(data.samples["train"])
        cell = "(source, label)" if config.balance == "source_label" else "(age group, label)"
        log.info("sample weights balance every %s cell: %s", cell, sorted({
            (s.source, s.label, round(float(w), 3)) for s, w in zip(data.samples["train"], sample_weights)}))
    else:
        weights = class_weights(data.targets["train"], n_classes)
        log.info("class weights %s", {data.labels[c]: round(w, 3) for c, w in weights.items()})
        # As per-sample weights: the same loss, and any Keras backend's fit accepts them.
        sample_weights = np.array([weights[int(t)] for t in data.targets["train"]], dtype=np.float32)
    train_ds = make_dataset(data.images["train"], data.targets["train"], n_classes, config.batch_size,
                            training=True, augment=config.augment, seed=config.seed,
                            sample_weights=sample_weights)
    val_ds = make_dataset(data.images["val"], data.targets["val"], n_classes, config.batch_size, training=False)

    strategy = distribution_strategy(config.strategy)
    with strategy.scope():
        model = build_classifier(n_classes, config.input_size, config.backbone,
                                 None if not config.pretrained else config.weights, config.dropout,
                                 config.intensity)
        if config.init_from:
            _init_from(model, Path(config.init_from))
    state = _read_state(run_dir)
    started = time.time()
    for stage, epochs, learning_rate in _stages(config):
        best = run_dir / f"{stage}_best.weights.h5"
        if stage in state["done"]:
            model.load_weights(best)
            log.info("stage %s already done: loaded %s", stage, best.name)
            continue
        with strategy.scope():
            _set_trainable(model, stage, config.unfreeze_last)
            model.compile(
                optimizer=_optimizer(config, learning_rate, epochs, len(train_ds)),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                metrics=["accuracy", keras.metrics.AUC(name="auc")],
            )
        log.info("stage %s: %d epochs at lr %g, %d trainable weights", stage, epochs, learning_rate,
                 len(model.trainable_weights))
        model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                  callbacks=_callbacks(config, stage, started), verbose=0)
        if best.exists():
            model.load_weights(best)
        state["done"].append(stage)
        (run_dir / STATE_FILE).write_text(json.dumps(state))
    final = run_dir / FINAL_MODEL
    model.save(final)
    (run_dir / "labels.json").write_text(json.dumps(list(data.labels)))
    log.info("saved %s", final)
    return final


def load_trained(run_dir: Path) -> object:

    return load_keras_model(Path(run_dir) / FINAL_MODEL)


def predict_images(model: object, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Probabilities for uint8 (N,S,S) images, batched (any Keras backend)."""
    from cxrviewer.core.model.preprocessing import to_model_array

    if len(images) == 0:
        return np.zeros((0, 0), np.float32)
    return np.asarray(model.predict(to_model_array(images), batch_size=batch_size, verbose=0), np.float32)
