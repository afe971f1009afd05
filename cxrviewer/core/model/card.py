"""The model card (`model.json`): written by the trainer, read by the viewer's registry.

Only the fields the viewer acts on are typed here; everything else the trainer records
(data provenance, split, metrics, limitations) stays in `extra` and is shown as-is.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_FILENAME = "model.json"
CARD_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    name: str
    labels: tuple[str, ...]
    input_size: int
    backbone: str
    cam_layer: str
    weights_file: str
    weights_sha256: str
    task: str = ""
    temperature: float = 1.0
    operating_threshold: float = 0.5
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pneumonia_labels(self) -> tuple[str, ...]:
        """Labels whose probabilities add up to "pneumonia" (empty for non-pneumonia models)."""
        from cxrviewer.core.labels import pneumonia_labels

        return pneumonia_labels(self.labels)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": CARD_SCHEMA_VERSION,
            "name": self.name,
            "task": self.task,
            "labels": list(self.labels),
            "input_size": self.input_size,
            "backbone": self.backbone,
            "cam_layer": self.cam_layer,
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
            "temperature": self.temperature,
            "operating_threshold": self.operating_threshold,
            "preprocessing": dict(self.preprocessing),
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        known = {
            "schema_version", "name", "task", "labels", "input_size", "backbone", "cam_layer",
            "weights_file", "weights_sha256", "temperature", "operating_threshold", "preprocessing",
        }
        return cls(
            name=str(data["name"]),
            task=str(data.get("task", "")),
            labels=tuple(str(label) for label in data["labels"]),
            input_size=int(data["input_size"]),
            backbone=str(data["backbone"]),
            cam_layer=str(data["cam_layer"]),
            weights_file=str(data["weights_file"]),
            weights_sha256=str(data["weights_sha256"]),
            temperature=float(data.get("temperature", 1.0)),
            operating_threshold=float(data.get("operating_threshold", 0.5)),
            preprocessing=dict(data.get("preprocessing", {})),
            extra={key: value for key, value in data.items() if key not in known},
        )

    def write(self, folder: Path) -> Path:
        path = Path(folder) / CARD_FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> ModelCard:
        path = Path(folder) / CARD_FILENAME
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


class NamedByCard:
    """`name` from the model card, for every engine that holds one as `self.card`."""

    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.name


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
