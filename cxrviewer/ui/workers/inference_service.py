"""The AI second reader for the GUI: a Qt face on the inference worker process.

GUI thread                               helper threads            worker process
----------                               --------------            --------------
switch_model / request / request_sanity  sender: preprocess the    ONNX Runtime first answer,
  → InferenceClient (Qt-free)              newest request, write   TensorFlow in the background
                                         reader: worker messages   (see core/inference/worker.py)
_on_event ◀── queued signal ──────────── ← deliver(event)
  accept (drops stale ids) → typed signals below

Inference requests carry a lane ("main", "compare"): newest-wins holds per lane, so the compare
pane's request never supersedes the main view's. The main lane's results come on
`prediction_ready` / `cam_ready` / `request_failed` as before; every lane's on `answered` /
`lane_failed`.

The GUI process never imports TensorFlow: the window keeps repainting whatever the model
is doing (tracing a graph, loading, crashing). Call `shutdown()` from closeEvent; it
returns within about a second.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from cxrviewer.core.inference.client import InferenceClient
from cxrviewer.core.inference.protocol import (
    COMPARE_LANE,
    LANES,
    MAIN_LANE,
    Answer,
    AuditDone,
    AuditOutcome,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    RequestFailed,
    SanityDone,
    SanityOutcome,
    TensorflowReady,
    WorkerLost,
)
from cxrviewer.core.inference.worker import WorkerOptions
from cxrviewer.core.types import XrayImage
from cxrviewer.core.xai.cam import GRADCAM

__all__ = ["InferenceService", "ModelInfo", "SanityOutcome", "INFERENCE_THREAD_NAME",
           "MAIN_LANE", "COMPARE_LANE", "LANES"]

log = logging.getLogger(__name__)

INFERENCE_THREAD_NAME = "cxrviewer-inference"   # the worker process's name (and its main thread's)


class InferenceService(QObject):
    """The GUI's handle on the inference worker. Call every method from the GUI thread."""

    model_loading = Signal(str)           # name or folder being loaded
    model_ready = Signal(object)          # ModelInfo
    model_failed = Signal(str)            # message: no model is loaded now
    model_kept = Signal(str, object)      # message, ModelInfo: a switch failed, the previous model still runs
    prediction_ready = Signal(object)     # Prediction (latest request only)
    cam_ready = Signal(object)            # CamResult (latest request only)
    request_failed = Signal(int, str)     # request_id, message (latest request only)
    answered = Signal(str, object, object)    # lane, Prediction, CamResult | None (latest of that lane)
    lane_failed = Signal(str, int, str)       # lane, request_id, message (latest of that lane)
    sanity_ready = Signal(object)         # SanityOutcome with a result (latest sanity request only)
    sanity_failed = Signal(int, str)      # request_id, message (latest sanity request only)
    audit_ready = Signal(object)          # AuditOutcome with a result (latest audit request only)
    audit_failed = Signal(int, str)       # request_id, message
    worker_lost = Signal(str, bool)       # message, restarting
    tensorflow_ready = Signal(str)        # model name: gradients at any layer are now quick

    _event = Signal(object)               # from the client's helper threads, queued to the GUI thread

    def __init__(self, parent: QObject | None = None, models_root: str | Path | None = None,
                 options: WorkerOptions | None = None) -> None:
        super().__init__(parent)
        if options is None:
            options = WorkerOptions(models_root=None if models_root is None else str(models_root))
        # always queued: an event the client delivers at once (e.g. "no model" while the caller is
        # still inside request()) reaches listeners after the call returned, like every other
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._client = InferenceClient(self._event.emit, options)
        self._stopped = False
        self._audits: dict[tuple, AuditOutcome] = {}
        self._audit_keys: dict[int, tuple] = {}
        self._client.start()

    # -- commands -------------------------------------------------------------------------
    @property
    def current_model(self) -> ModelInfo | None:
        return self._client.current_model

    @property
    def latest_request_id(self) -> int:
        """The newest request id of the main lane."""
        return self._client.latest_request_id

    def latest_request_id_in(self, lane: str) -> int:
        return self._client.latest_request_id_in(lane)

    @property
    def worker_pid(self) -> int | None:
        return self._client.worker_pid

    def switch_model(self, name_or_folder: str | Path) -> None:
        """Load a registered model by name, or a model folder; "" loads the default model.

        Results of the previous model become stale and are dropped; if the new one fails to
        load, the previous one keeps running (`model_kept`).
        """
        if not self._stopped:
            self._client.switch_model(str(name_or_folder))

    def load_default_model(self) -> None:
        self.switch_model("")

    def request(self, image: XrayImage, class_index: int | None = None, method: str | None = GRADCAM,
                layer: str | None = None, lane: str = MAIN_LANE) -> int:
        """Ask for a prediction (+ a heat map unless `method` is None); returns the request id.

        Only the newest request of `lane` is kept: one still waiting in that lane is replaced,
        and results of anything but the lane's newest id are never delivered. Another lane's
        request is not touched.
        """
        return self._client.request(image, class_index, method, layer, lane)

    def request_sanity(self, image: XrayImage, class_index: int | None = None, layer: str | None = None,
                       method: str = GRADCAM) -> int:
        """The model randomisation test in the worker; answered by `sanity_ready` or `sanity_failed`."""
        return self._client.request_sanity(image, class_index, layer, method)

    def cancel_sanity(self) -> None:
        self._client.cancel_sanity()

    def request_audit(self, image: XrayImage, class_index: int, method: str, layer: str) -> int:
        """Deletion/insertion curves and method agreement for one map (core/xai/audit.py), in the worker.

        Answered by `audit_ready` / `audit_failed`; the same question is answered from a cache
        (then the id is -1 and `audit_ready` follows from the event loop)."""
        model = self.current_model
        from cxrviewer.core.model.runtime import image_key

        key = (model.name if model is not None else "", image_key(image), class_index, method, layer)
        cached = self._audits.get(key)
        request_id = self._client.request_audit(image, class_index, method, layer) if cached is None else -1
        if cached is not None:
            self._client.cancel_audit()
            QTimer.singleShot(0, self, lambda: self.audit_ready.emit(cached))   # after the caller has the id
        else:
            self._audit_keys[request_id] = key
        return request_id

    def cancel_audit(self) -> None:
        self._client.cancel_audit()

    def cached_audit(self, image: XrayImage, class_index: int, method: str, layer: str) -> AuditOutcome | None:
        """The audit already computed for this map (same model, image, class, method, layer), else None.

        Never starts one: the case report uses it to include the audit only when the user ran it."""
        from cxrviewer.core.model.runtime import image_key

        model = self.current_model
        key = (model.name if model is not None else "", image_key(image), class_index, method, layer)
        return self._audits.get(key)

    def cancel(self, lane: str = MAIN_LANE) -> None:
        """Forget the pending request of `lane` and ignore anything of that lane still in flight."""
        self._client.cancel(lane)

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the worker process (asked, then terminated, then killed); True when it is gone."""
        self._stopped = True
        grace = 0.5 if timeout_ms is None else max(min(timeout_ms / 1000.0, 0.5), 0.05)
        self._client.shutdown(grace)
        return True

    def is_running(self) -> bool:
        return not self._stopped and self._client.worker_pid is not None

    # -- events (GUI thread) ---------------------------------------------------------------
    @Slot(object)
    def _on_event(self, event: object) -> None:
        if self._stopped or not self._client.accept(event):
            return
        if isinstance(event, ModelLoading):
            self.model_loading.emit(event.name)
        elif isinstance(event, ModelReady):
            self.model_ready.emit(event.info)
        elif isinstance(event, ModelFailed):
            kept = self._client.current_model
            if event.kept and kept is not None:
                self.model_kept.emit(event.message, kept)
            else:
                self.model_failed.emit(event.message)
        elif isinstance(event, Answer):
            if event.lane == MAIN_LANE:
                self.prediction_ready.emit(event.prediction)
                if event.cam is not None:
                    self.cam_ready.emit(event.cam)
            self.answered.emit(event.lane, event.prediction, event.cam)
        elif isinstance(event, RequestFailed):
            if event.lane == MAIN_LANE:
                self.request_failed.emit(event.request_id, event.message)
            self.lane_failed.emit(event.lane, event.request_id, event.message)
        elif isinstance(event, SanityDone):
            outcome = event.outcome
            if outcome.result is None:
                self.sanity_failed.emit(outcome.request_id, outcome.error or "the sanity check gave no result")
            else:
                self.sanity_ready.emit(outcome)
        elif isinstance(event, AuditDone):
            outcome = event.outcome
            key = self._audit_keys.pop(outcome.request_id, None)
            if outcome.result is None:
                self.audit_failed.emit(outcome.request_id, outcome.error or "the audit gave no result")
            else:
                if key is not None:
                    if len(self._audits) >= 32:
                        self._audits.pop(next(iter(self._audits)))
                    self._audits[key] = outcome
                self.audit_ready.emit(outcome)
        elif isinstance(event, TensorflowReady):
            log.info("TensorFlow ready in the worker for %s (%.1f s)", event.model_name, event.seconds)
            self.tensorflow_ready.emit(event.model_name)
        elif isinstance(event, WorkerLost):
            self.worker_lost.emit(event.message, event.restarting)
