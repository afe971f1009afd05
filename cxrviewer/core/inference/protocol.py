"""Messages between the viewer and its inference worker process (frozen, small, picklable).

viewer → worker: LoadModel, Infer, RunSanity, CancelSanity, RunAudit, CancelAudit, Stop
worker → viewer: ModelLoading, ModelReady, ModelFailed, Answer, RequestFailed, SanityDone,
                 AuditDone, TensorflowReady

An `Infer` carries the preprocessed model input (≤ 224² floats), never the radiograph;
an `Answer` carries the probabilities and the raw CAM grid (e.g. 6 × 6 floats).

Inference requests travel in a *lane* ("main" for the viewer, "compare" for the compare pane):
newest-wins applies within a lane, so asking for the compare image never supersedes the main
image's request, and a newer main request supersedes only the older main one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.engine import ModelInput
from cxrviewer.core.types import CamResult, Prediction
from cxrviewer.core.xai.cam import METHODS

if TYPE_CHECKING:
    from cxrviewer.core.xai.audit import AuditResult
    from cxrviewer.core.xai.sanity import RandomisationResult

MAIN_LANE = "main"
COMPARE_LANE = "compare"
LANES = (MAIN_LANE, COMPARE_LANE)     # the worker runs a waiting main request before a compare one


@dataclass(frozen=True)
class ModelInfo:
    """What the UI needs to know about the loaded model."""

    name: str
    labels: tuple[str, ...]
    conv_layers: tuple[str, ...]          # CAM target layers, the card's default first
    device: str                           # "CPU" or "GPU: ..."
    default_layer: str = ""
    methods: tuple[str, ...] = METHODS    # "cam" only when the model has a GAP → Dense head
    dense_cam_layer: str | None = None    # the only layer where method "cam" is allowed
    folder: Path | None = None
    card: ModelCard | None = None
    device_detail: str = ""
    layer_grids: tuple[tuple[str, int, int], ...] = ()   # (layer, rows, columns) of its output
    runtime: str = ""                     # "ONNX Runtime" or "TensorFlow"
    input_size: int = 0

    @property
    def status_text(self) -> str:
        """"AI ready · pneumonia3 · CPU" for the status bar."""
        return f"AI ready · {self.name} · {self.device}"


@dataclass(frozen=True)
class SanityRequest:
    """The model randomisation test for one preprocessed image, class, method and layer."""

    request_id: int
    item: ModelInput
    class_index: int | None = None
    layer: str | None = None
    method: str = "gradcam"


@dataclass(frozen=True)
class SanityOutcome:
    """The worker's answer to a SanityRequest: a frozen result, or why there is none."""

    request_id: int
    image_key: str
    result: RandomisationResult | None = None
    error: str = ""


@dataclass(frozen=True)
class AuditRequest:
    """The explanation audit (core/xai/audit.py) of one map: image, class, method, layer."""

    request_id: int
    item: ModelInput
    class_index: int
    method: str
    layer: str


@dataclass(frozen=True)
class AuditOutcome:
    request_id: int
    image_key: str
    result: AuditResult | None = None
    error: str = ""


# -- viewer → worker -----------------------------------------------------------------------
@dataclass(frozen=True)
class LoadModel:
    generation: int
    name_or_folder: str        # "" = the default model


@dataclass(frozen=True)
class Infer:
    request_id: int
    item: ModelInput
    class_index: int | None
    method: str | None
    layer: str | None
    lane: str = MAIN_LANE


@dataclass(frozen=True)
class RunSanity:
    request: SanityRequest


@dataclass(frozen=True)
class CancelSanity:
    request_id: int            # the sanity request still wanted (older ones are dropped)


@dataclass(frozen=True)
class RunAudit:
    request: AuditRequest


@dataclass(frozen=True)
class CancelAudit:
    request_id: int            # the audit still wanted (older ones are dropped)


@dataclass(frozen=True)
class Stop:
    pass


# -- worker → viewer -----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLoading:
    generation: int
    name: str


@dataclass(frozen=True)
class ModelReady:
    generation: int
    info: ModelInfo


@dataclass(frozen=True)
class ModelFailed:
    generation: int
    message: str
    kept: str = ""             # the model still loaded in the worker (a failed switch keeps it)


@dataclass(frozen=True)
class Answer:
    request_id: int
    prediction: Prediction
    cam: CamResult | None
    lane: str = MAIN_LANE


@dataclass(frozen=True)
class RequestFailed:
    request_id: int
    message: str
    lane: str = MAIN_LANE


@dataclass(frozen=True)
class SanityDone:
    outcome: SanityOutcome


@dataclass(frozen=True)
class AuditDone:
    outcome: AuditOutcome


@dataclass(frozen=True)
class TensorflowReady:
    model_name: str
    seconds: float


# -- the viewer's own events (not sent by the worker) ---------------------------------------
@dataclass(frozen=True)
class WorkerLost:
    """The worker process ended without being asked to (crash, kill, out of memory)."""

    exit_code: int | None
    restarting: bool
    message: str
