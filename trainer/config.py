"""Training configuration, saved as JSON in the run directory."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trainer.augment import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    name: str                                   # model name, e.g. "pneumonia3"
    task: str                                   # pneumonia | pneumonia3 | folders
    data: tuple[str, ...]                       # folder trees and/or CSV manifests
    run_dir: str
    labels: tuple[str, ...] = ()                # empty: sorted labels found in the data
    backbone: str = "densenet121"
    input_size: int = 224
    weights: str = "none"                       # none | imagenet | PATH to a no-top weights file
    batch_size: int = 16
    epochs: int = 30                            # single stage (from scratch) or fine-tune stage
    warmup_epochs: int = 3                      # frozen-backbone stage (pretrained weights only)
    unfreeze_last: int = 50                     # backbone layers unfrozen in the fine-tune stage
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    dropout: float = 0.3
    intensity: str = "none"                     # none | equalise: in-graph per-image histogram equalisation
    label_smoothing: float = 0.0
    patience: int = 8
    seed: int = 42
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    expected_size: tuple[int, int] | None = None
    max_per_class: int | None = None            # cap per label within each source (quick runs, tests)
    split_from: str = ""                        # a split.csv whose assignments images keep (no leakage
                                                # when starting from another run's backbone)
    balance: str = "class"                      # class | source_label | group_label (see trainer.data)
    time_budget_min: float | None = None        # stop a stage cleanly when the budget is spent
    strategy: str = "default"                   # default | mirrored | multiworker
    mixed_precision: bool = False
    init_from: str = ""                         # a trained .keras of the same architecture: every weight
                                                # (head too) starts from it; one stage, all layers train
    optimizer: str = "adam"                     # adam | adamw
    weight_decay: float = 1e-4                  # adamw only
    schedule: str = "plateau"                   # plateau (reduce on plateau) | cosine (warm-up, cosine decay)
    warmup_fraction: float = 0.05               # cosine: share of all steps spent warming up
    operating_rule: str = "youden"              # youden | sensitivity:0.95 (fitted on validation)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @property
    def pretrained(self) -> bool:
        return self.weights not in ("none", "", None)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        augment = dict(raw.get("augment", {}))
        if "jpeg_quality" in augment:
            augment["jpeg_quality"] = tuple(augment["jpeg_quality"])
        raw["augment"] = AugmentConfig(**augment)
        for key in ("data", "labels", "fractions"):
            raw[key] = tuple(raw.get(key, ()))
        if raw.get("expected_size") is not None:
            raw["expected_size"] = tuple(raw["expected_size"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
