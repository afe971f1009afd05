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
from typing import Generic, TypeVar

from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.engine import ModelInput
from cxrviewer.core.types import CamResult, MapRequest, Prediction
from cxrviewer.core.xai.audit import AuditResult
from cxrviewer.core.xai.cam import METHODS
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


CheckResult = TypeVar("CheckResult")


@dataclass(frozen=True)
class CheckOutcome(Generic[CheckResult]):
    """The worker's answer to a check of one map (sanity test, explanation audit): a frozen result, or why
    there is none."""

    request_id: int
    image_key: str
    result: CheckResult | None = None
    error: str = ""


@dataclass(frozen=True)
class SanityOutcome(CheckOutcome[RandomisationResult]):
    """The model randomisation test's answer (core/xai/sanity.py)."""


@dataclass(frozen=True)
class AuditOutcome(CheckOutcome[AuditResult]):
    """The explanation audit's answer (core/xai/audit.py)."""


@dataclass(frozen=True)
class ModelMessage:
    """About one model load: `generation` numbers the LoadModel it belongs to (an older one is stale)."""

    generation: int


# -- viewer → worker -----------------------------------------------------------------------
@dataclass(frozen=True)
class LoadModel(ModelMessage):
    name_or_folder: str        # "" = the default model


@dataclass(frozen=True)
class Infer(MapRequest[ModelInput]):
    lane: str = MAIN_LANE


@dataclass(frozen=True)
class RunSanity:
    request: MapRequest[ModelInput]      # method None: Grad-CAM


@dataclass(frozen=True)
class CancelSanity:
    request_id: int            # the sanity request still wanted (older ones are dropped)


@dataclass(frozen=True)
class RunAudit:
    request: MapRequest[ModelInput]      # always a class, method and layer: the map on screen


@dataclass(frozen=True)
class CancelAudit:
    request_id: int            # the audit still wanted (older ones are dropped)


@dataclass(frozen=True)
class Stop:
    pass


# -- worker → viewer -----------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLoading(ModelMessage):
    name: str


@dataclass(frozen=True)
class ModelReady(ModelMessage):
    info: ModelInfo


@dataclass(frozen=True)
class ModelFailed(ModelMessage):
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
