"""A fake inference engine and small images, models and results for the state-model tests (no Qt, no model)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import CamResult, OodVerdict, Prediction, Window, XrayImage

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")


@dataclass
class FakeEngine:
    """Records every request; ids count up like the real service's."""

    requests: list[tuple[int, str, int | None, str | None, str | None]] = field(default_factory=list)
    cancels: int = 0

    def request(self, image: XrayImage, class_index: int | None = None, method: str | None = "gradcam",
                layer: str | None = None) -> int:
        request_id = len(self.requests) + 1
        self.requests.append((request_id, image_key(image), class_index, method, layer))
        return request_id

    def cancel(self) -> None:
        self.cancels += 1

    @property
    def last_id(self) -> int:
        return self.requests[-1][0]


def image(name: str = "NORMAL/a.png", size: int = 64) -> XrayImage:
    pixels = np.random.default_rng(len(name)).uniform(0, 1000, (size, size)).astype(np.float32)
    return XrayImage(path=Path("/teaching/pneumonia") / name, display_name=name, pixels=pixels,
                     default_window=Window(500, 1000), presets=(), photometric="MONOCHROME2",
                     sha256=hashlib.sha256(name.encode()).hexdigest())


def model(name: str = "tiny", threshold: float = 0.85, sha: str = "a" * 64) -> ModelInfo:
    card = ModelCard(name=name, labels=LABELS, input_size=16, backbone="tiny", cam_layer="conv",
                     weights_file="w.keras", weights_sha256=sha, operating_threshold=threshold)
    return ModelInfo(name=name, labels=LABELS, conv_layers=("conv",), device="CPU", default_layer="conv", card=card)


def prediction(request_id: int, img: XrayImage, probabilities: tuple[float, ...] = (0.05, 0.15, 0.8),
               model_name: str = "tiny", flagged: bool = False) -> Prediction:
    ood = OodVerdict(True, 9.0, 3.0, "a lateral view") if flagged else None
    return Prediction(request_id, image_key(img), model_name, LABELS, probabilities, ood)


def cam(request_id: int, img: XrayImage, class_index: int, model_name: str = "tiny", layer: str = "conv",
        method: str = "gradcam") -> CamResult:
    grid = np.zeros((4, 4), np.float32)
    grid[1, 1] = 1.0 + class_index
    return CamResult(request_id, image_key(img), model_name, class_index, method, layer, grid)
