"""Frozen dataclasses that cross threads and module boundaries.

Nothing here is mutable after construction; numpy arrays inside are marked read-only.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from cxrviewer.core.xai.cam import GRADCAM

InputT = TypeVar("InputT")


def readonly(array: np.ndarray) -> np.ndarray:
    """Return `array` with its write flag cleared so it can be shared between threads."""
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Window:
    """A display window in the units of `XrayImage.pixels` (after the Modality LUT)."""

    center: float
    width: float

    @classmethod
    def spanning(cls, low: float, high: float, min_width: float = 0.0) -> Window:
        """The window from `low` to `high`, widened upwards to at least `min_width`."""
        width = max(high - low, min_width)
        return cls(low + width / 2.0, width)

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0


@dataclass(frozen=True)
class WindowPreset:
    name: str
    window: Window


class SpacingKind(str, Enum):
    """Where a pixel spacing came from, so the ruler can say what its millimetres mean."""

    PATIENT = "patient"      # Pixel Spacing (0028,0030): calibrated at the patient
    DETECTOR = "detector"    # Imager Pixel Spacing (0018,1164) only: mm at the detector
    NONE = "none"            # no spacing: distances in pixels


@dataclass(frozen=True)
class XrayImage:
    """One frame of a radiograph, ready for windowing.

    `pixels` is a 2-D float32 array after the Modality LUT (and VOI LUT sequence, when the
    file has one). `invert_for_display` is True for MONOCHROME1: the display pipeline
    inverts once; the pixel values themselves are never flipped.
    """

    path: Path
    display_name: str
    pixels: np.ndarray
    default_window: Window
    presets: tuple[WindowPreset, ...]
    photometric: str
    invert_for_display: bool = False
    pixel_spacing: tuple[float, float] | None = None   # (row, column) mm
    spacing_kind: SpacingKind = SpacingKind.NONE
    metadata: Mapping[str, str] = field(default_factory=dict)
    frame_index: int = 0
    frame_count: int = 1
    notes: tuple[str, ...] = ()            # warnings a user should see (fallbacks, colour)
    sha256: str = ""                        # hash of the file bytes: identifies the image, not the patient

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


@dataclass(frozen=True)
class OodVerdict:
    """The out-of-distribution gate's answer for one image (see core/ood_gate.py)."""

    flagged: bool
    score: float | None          # None when an image check decided before the model ran
    threshold: float | None      # None when the model has no fitted gate
    reason: str                  # "" when not flagged

    def as_json(self) -> dict[str, object]:
        score = self.score if self.score is not None and bool(np.isfinite(self.score)) else None
        return {"flagged": self.flagged,
                "score": None if score is None else round(float(score), 4),
                "threshold": None if self.threshold is None else round(float(self.threshold), 4),
                "reason": self.reason}

    def message(self, model_name: str) -> str:
        return f"Outside what {model_name} knows: {self.reason}"

    def shown_anyway_message(self, model_name: str) -> str:
        """How a flagged image's result that the user chose to see is marked: the viewer's gate line
        and the case report's heat-map and call lines."""
        return f"Shown anyway — {self.message(model_name)}"


@dataclass(frozen=True)
class MapRequest(Generic[InputT]):
    """One question for the model: the probabilities for `item` (an XrayImage, or the ModelInput
    made from it) and the heat map of one class, method and layer. The viewer's requests, the
    messages to the inference worker and the sanity test and explanation audit all take one.

    class_index None: the model's call; method None: the probabilities alone; layer None: the card's.
    """

    request_id: int
    item: InputT
    class_index: int | None = None
    method: str | None = GRADCAM
    layer: str | None = None


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for one image from one model, and whether the image is like its training data."""

    request_id: int
    image_key: str
    model_name: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    ood: OodVerdict | None = None

    @property
    def outside_training_data(self) -> bool:
        return self.ood is not None and self.ood.flagged

    @property
    def top_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def top_label(self) -> str:
        return self.labels[self.top_index]

    def probability(self, label: str) -> float:
        return self.probabilities[self.labels.index(label)]


@dataclass(frozen=True)
class CamResult:
    """A raw class-activation map at the resolution of its conv layer (e.g. 7×7)."""

    request_id: int
    image_key: str
    model_name: str
    class_index: int
    method: str
    layer: str
    cam: np.ndarray         # float32, >= 0, not normalised
