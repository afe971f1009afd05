"""The AI second reader's thread: one QThread owns TensorFlow and the model; the newest request wins.

GUI thread                                   inference thread (the only TensorFlow user)
-----------                                  -------------------------------------------
switch_model(name) ── _load_wanted ──▶        load: configure_devices → load_classifier
                                                    → InferenceEngine.warm_up
request(image, ...) → put in the ONE          process: take the latest request (older ones
pending slot ── _wake ──▶                           were overwritten = dropped), run it
_on_worker_* ◀── frozen results ──            emit Prediction / CamResult / failure
  drop if request_id != latest, else re-emit

TensorFlow is imported lazily inside the worker, so constructing this service (and the
window) does not import it. Call `shutdown()` from MainWindow.closeEvent.
"""
from __future__ import annotations

import gc
import itertools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cxrviewer.core.errors import CxrError
from cxrviewer.core.model.cam import CAM, GRADCAM, METHODS
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.failures import describe_model_failure
from cxrviewer.core.model.registry import default_model_name, models_root, resolve_model_folder, scan_models
from cxrviewer.core.model.runtime import InferenceRequest, run_request
from cxrviewer.core.types import CamResult, Prediction, XrayImage

if TYPE_CHECKING:
    from cxrviewer.core.sanity import RandomisationResult

log = logging.getLogger(__name__)

T = TypeVar("T")

INFERENCE_THREAD_NAME = "cxrviewer-inference"


@dataclass(frozen=True)
class ModelInfo:
    """What the UI needs to know about the loaded model (crosses threads, so frozen)."""

    name: str
    labels: tuple[str, ...]
    conv_layers: tuple[str, ...]          # CAM target layers, the card's default first
    device: str                           # DeviceInfo.label, e.g. "CPU" or "GPU: ..."
    default_layer: str = ""
    methods: tuple[str, ...] = METHODS    # "cam" only when the model has a GAP → Dense head
    dense_cam_layer: str | None = None    # the only layer where method "cam" is allowed
    folder: Path | None = None
    card: ModelCard | None = None
    device_detail: str = ""
    layer_grids: tuple[tuple[str, int, int], ...] = ()   # (layer, rows, columns) of its output


@dataclass(frozen=True)
class SanityRequest:
    """The model randomisation test for one image, class, method and layer (see core.sanity)."""

    request_id: int
    image: XrayImage
    class_index: int | None = None
    layer: str | None = None
    method: str = GRADCAM


@dataclass(frozen=True)
class SanityOutcome:
    """The worker's answer to a SanityRequest: a frozen result, or why there is none."""

    request_id: int
    image_key: str
    result: "RandomisationResult | None" = None
    error: str = ""


class _LatestSlot(Generic[T]):
    """A lock-protected single slot: `put` overwrites (the newest wins), `take` empties it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None

    def put(self, item: T) -> None:
        with self._lock:
            self._item = item

    def take(self) -> T | None:
        with self._lock:
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        self.take()

    def pending(self) -> bool:
        with self._lock:
            return self._item is not None


class _LatestId:
    """The id of the one request still wanted, shared by the GUI thread and the worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def set(self, value: int) -> None:
        with self._lock:
            self._value = value

    def get(self) -> int:
        with self._lock:
            return self._value


class _InferenceWorker(QObject):
    """Lives in the inference thread; the only object that touches TensorFlow."""

    model_loading = Signal(int, str)
    model_ready = Signal(int, object)
    model_failed = Signal(int, str)
    prediction_ready = Signal(object)
    cam_ready = Signal(object)
    request_failed = Signal(int, str)
    sanity_done = Signal(object)          # SanityOutcome

    def __init__(
        self,
        requests: _LatestSlot[InferenceRequest],
        loads: _LatestSlot[tuple[int, str]],
        stop: threading.Event,
        root: Path | None,
        wanted_sanity: _LatestId,
    ) -> None:
        super().__init__()
        self._requests = requests
        self._loads = loads
        self._wanted_sanity = wanted_sanity
        self._stop = stop
        self._root = root
        self._engine = None
        self._no_model_reason = "no AI model has been loaded yet"
        self.runs = 0  # requests actually computed (diagnostics and tests)

    @Slot()
    def name_thread(self) -> None:
        """Give the QThread a readable name in Python's logs (else "Dummy-1")."""
        threading.current_thread().name = INFERENCE_THREAD_NAME

    @Slot()
    def load(self) -> None:
        """Load the latest wanted model (an older, superseded load is skipped)."""
        wanted = self._loads.take()
        if wanted is None or self._stop.is_set():
            return
        generation, name_or_folder = wanted
        self.model_loading.emit(generation, str(name_or_folder) or "default model")
        self._engine = None
        gc.collect()  # let the previous model go before the next one is built
        try:
            self._engine, info = self._load(generation, name_or_folder)
        except CxrError as exc:
            self._fail(generation, str(exc))
        except LookupError as exc:
            self._fail(generation, exc.args[0] if exc.args else str(exc))
        except Exception as exc:  # keep the thread alive whatever the model does
            log.exception("loading model %r failed", name_or_folder)
            self._fail(generation, describe_model_failure("the AI model could not be loaded", exc))
        else:
            self.model_ready.emit(generation, info)

    def _load(self, generation: int, name_or_folder: str):
        from cxrviewer.core.model.device import configure_devices
        from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

        if not name_or_folder:
            scan = scan_models(self._root)
            name_or_folder = default_model_name([entry.card for entry in scan.models]) or ""
            if not name_or_folder:
                details = "; ".join(problem.message for problem in scan.problems)
                raise LookupError(
                    f"no AI models found in {models_root(self._root)}" + (f" ({details})" if details else "")
                )
        folder = resolve_model_folder(name_or_folder, self._root)
        device = configure_devices()
        engine = InferenceEngine(load_classifier(folder))
        engine.warm_up()
        dense_layer = engine.cam_layer_for_dense_weights
        info = ModelInfo(
            name=engine.name,
            labels=engine.labels,
            conv_layers=engine.conv_layers,
            device=device.label,
            default_layer=engine.default_layer,
            methods=tuple(m for m in METHODS if m != CAM or dense_layer is not None),
            dense_cam_layer=dense_layer,
            folder=Path(folder),
            card=engine.card,
            device_detail=device.detail,
            layer_grids=tuple((name, rows, cols) for name, (rows, cols) in engine.layer_grids.items()),
        )
        return engine, info

    def _fail(self, generation: int, message: str) -> None:
        self._engine = None
        self._no_model_reason = message
        self.model_failed.emit(generation, message)

    @Slot()
    def process(self) -> None:
        """Run the latest pending request, if any; earlier ones were overwritten in the slot."""
        if self._stop.is_set():
            return
        request = self._requests.take()
        if request is None:
            return  # a previous wake-up already took the newest request
        if self._engine is None:
            self.request_failed.emit(request.request_id, f"No AI model is loaded: {self._no_model_reason}")
            return
        self.runs += 1
        try:
            prediction, cam = run_request(self._engine, request)
        except CxrError as exc:
            self.request_failed.emit(request.request_id, str(exc))
            return
        except Exception as exc:  # a failing request must not take the worker down
            log.exception("inference request %d failed", request.request_id)
            self.request_failed.emit(
                request.request_id, describe_model_failure("the AI result could not be computed", exc)
            )
            return
        if self._stop.is_set() or self._requests.pending():
            return  # superseded while running: the newer request will answer
        self.prediction_ready.emit(prediction)
        if cam is not None:
            self.cam_ready.emit(cam)

    @Slot(object)
    def sanity(self, request: SanityRequest) -> None:
        """Run the model randomisation test with the loaded engine (weights restored afterwards)."""
        from cxrviewer.core.model.runtime import image_key
        from cxrviewer.core.sanity import model_randomisation_test

        key = image_key(request.image)
        if self._stop.is_set() or request.request_id != self._wanted_sanity.get():
            return   # cancelled (its dialog closed) or superseded while it queued
        if self._engine is None:
            self.sanity_done.emit(SanityOutcome(request.request_id, key,
                                                error=f"No AI model is loaded: {self._no_model_reason}"))
            return
        try:
            result = model_randomisation_test(
                self._engine.loaded, request.image, request.class_index, request.layer, request.method,
                engine=self._engine,
            )
        except CxrError as exc:
            self.sanity_done.emit(SanityOutcome(request.request_id, key, error=str(exc)))
        except Exception as exc:  # a failing check must not take the worker down
            log.exception("sanity check %d failed", request.request_id)
            self.sanity_done.emit(SanityOutcome(
                request.request_id, key, error=describe_model_failure("the sanity check failed", exc)))
        else:
            self.sanity_done.emit(SanityOutcome(request.request_id, key, result=result))

    def release(self) -> None:
        self._engine = None


class InferenceService(QObject):
    """The GUI's handle on the inference thread. Call every method from the GUI thread."""

    model_loading = Signal(str)           # name or folder being loaded
    model_ready = Signal(object)          # ModelInfo
    model_failed = Signal(str)            # message for the user
    prediction_ready = Signal(object)     # Prediction (latest request only)
    cam_ready = Signal(object)            # CamResult (latest request only)
    request_failed = Signal(int, str)     # request_id, message (latest request only)
    sanity_ready = Signal(object)         # SanityOutcome with a result (latest sanity request only)
    sanity_failed = Signal(int, str)      # request_id, message (latest sanity request only)

    _load_wanted = Signal()
    _wake = Signal()
    _sanity_wanted = Signal(object)

    def __init__(self, parent: QObject | None = None, models_root: str | Path | None = None) -> None:
        super().__init__(parent)
        self._requests: _LatestSlot[InferenceRequest] = _LatestSlot()
        self._loads: _LatestSlot[tuple[int, str]] = _LatestSlot()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._latest_id = 0
        self._latest_sanity_id = 0
        self._wanted_sanity = _LatestId()
        self._load_generation = 0
        self._model: ModelInfo | None = None
        self._stopped = False

        self._thread = QThread()
        self._thread.setObjectName(INFERENCE_THREAD_NAME)
        self._worker = _InferenceWorker(
            self._requests, self._loads, self._stop, None if models_root is None else Path(models_root),
            self._wanted_sanity,
        )
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.name_thread)
        self._load_wanted.connect(self._worker.load)
        self._wake.connect(self._worker.process)
        self._sanity_wanted.connect(self._worker.sanity)
        self._worker.sanity_done.connect(self._on_worker_sanity_done)
        self._worker.model_loading.connect(self._on_worker_model_loading)
        self._worker.model_ready.connect(self._on_worker_model_ready)
        self._worker.model_failed.connect(self._on_worker_model_failed)
        self._worker.prediction_ready.connect(self._on_worker_prediction)
        self._worker.cam_ready.connect(self._on_worker_cam)
        self._worker.request_failed.connect(self._on_worker_request_failed)
        self._thread.start()

    # -- commands -------------------------------------------------------------------------
    @property
    def current_model(self) -> ModelInfo | None:
        return self._model

    @property
    def latest_request_id(self) -> int:
        return self._latest_id

    def switch_model(self, name_or_folder: str | Path) -> None:
        """Load a registered model by name, or a model folder; "" loads the default model.

        Pending and in-flight results of the previous model become stale and are dropped.
        """
        if self._stopped:
            return
        self._load_generation += 1
        self._latest_id = next(self._ids)
        self._latest_sanity_id = self._latest_id   # a running check answers for the old model: drop it
        self._wanted_sanity.set(self._latest_sanity_id)
        self._requests.clear()
        self._model = None
        self._loads.put((self._load_generation, str(name_or_folder)))
        self._load_wanted.emit()

    def load_default_model(self) -> None:
        """Load "pneumonia3" if bundled, else the first model found (async, like switch_model)."""
        self.switch_model("")

    def request(
        self,
        image: XrayImage,
        class_index: int | None = None,
        method: str | None = GRADCAM,
        layer: str | None = None,
    ) -> int:
        """Ask for a prediction (+ a heat map unless `method` is None); returns the request id.

        Only the newest request is kept: a request still waiting is replaced, and results
        of anything but the newest id are never delivered.
        """
        request_id = next(self._ids)
        self._latest_id = request_id
        if not self._stopped:
            self._requests.put(InferenceRequest(request_id, image, class_index, method, layer))
            self._wake.emit()
        return request_id

    def request_sanity(
        self,
        image: XrayImage,
        class_index: int | None = None,
        layer: str | None = None,
        method: str = GRADCAM,
    ) -> int:
        """Run the model randomisation test in the worker; returns its id.

        Answers with `sanity_ready` (a SanityOutcome carrying a frozen RandomisationResult) or
        `sanity_failed`; only the newest sanity request is answered. It queues behind the
        heat-map request being computed (the worker is the only TensorFlow user) and a
        model switch drops it.
        """
        request_id = next(self._ids)
        self._latest_sanity_id = request_id
        self._wanted_sanity.set(request_id)
        if not self._stopped:
            self._sanity_wanted.emit(SanityRequest(request_id, image, class_index, layer, method))
        return request_id

    def cancel_sanity(self) -> None:
        """Drop the sanity check asked for last: skipped if it has not started, ignored if it has."""
        self._latest_sanity_id = next(self._ids)
        self._wanted_sanity.set(self._latest_sanity_id)

    def cancel(self) -> None:
        """Forget the pending request and ignore anything still in flight."""
        self._latest_id = next(self._ids)
        self._requests.clear()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop the worker and join its thread; True when the thread has finished.

        The current TensorFlow call cannot be interrupted, so this waits for it (at most
        `timeout_ms` when given). Safe to call twice.
        """
        if not self._stopped:
            self._stopped = True
            self._stop.set()
            self._requests.clear()
            self._loads.clear()
            self._thread.quit()
        finished = self._thread.wait() if timeout_ms is None else self._thread.wait(int(timeout_ms))
        if finished:
            self._worker.release()
        else:
            log.warning("the inference thread did not stop within %s ms", timeout_ms)
        return bool(finished)

    def is_running(self) -> bool:
        return self._thread.isRunning()

    # -- results from the worker (run in the GUI thread) ---------------------------------------
    def _is_current(self, request_id: int) -> bool:
        return not self._stopped and request_id == self._latest_id

    @Slot(int, str)
    def _on_worker_model_loading(self, generation: int, name: str) -> None:
        if generation == self._load_generation and not self._stopped:
            self.model_loading.emit(name)

    @Slot(int, object)
    def _on_worker_model_ready(self, generation: int, info: ModelInfo) -> None:
        if generation == self._load_generation and not self._stopped:
            self._model = info
            self.model_ready.emit(info)

    @Slot(int, str)
    def _on_worker_model_failed(self, generation: int, message: str) -> None:
        if generation == self._load_generation and not self._stopped:
            self._model = None
            self.model_failed.emit(message)

    @Slot(object)
    def _on_worker_prediction(self, prediction: Prediction) -> None:
        if self._is_current(prediction.request_id):
            self.prediction_ready.emit(prediction)

    @Slot(object)
    def _on_worker_cam(self, cam: CamResult) -> None:
        if self._is_current(cam.request_id):
            self.cam_ready.emit(cam)

    @Slot(int, str)
    def _on_worker_request_failed(self, request_id: int, message: str) -> None:
        if self._is_current(request_id):
            self.request_failed.emit(request_id, message)

    @Slot(object)
    def _on_worker_sanity_done(self, outcome: SanityOutcome) -> None:
        if self._stopped or outcome.request_id != self._latest_sanity_id:
            return
        if outcome.result is None:
            self.sanity_failed.emit(outcome.request_id, outcome.error or "the sanity check gave no result")
        else:
            self.sanity_ready.emit(outcome)
