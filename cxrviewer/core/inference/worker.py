"""The inference worker process: the only process that runs the model.

It owns ONNX Runtime (first answers) and, loaded in the background after its first answer,
TensorFlow (gradients at other layers, the sanity check). TensorFlow holds the interpreter
lock for seconds while it traces a graph; here that only delays this process's own work,
never the viewer's window.

Two threads:

* the reader takes every message off the request pipe into `_Inbox`, which keeps only the
  newest load, the newest inference request of each lane (main, compare) and the newest
  sanity check and audit (newest wins);
  the end of the pipe (the viewer quit or died) stops the worker;
* the main thread runs them, a model load first. An answer computed while a newer request
  arrived in its lane is dropped unsent (the viewer would drop it as stale anyway).

When idle it preloads TensorFlow (on a third, short-lived thread, so that requests are
still answered meanwhile) and then traces, one at a time, the graphs of layers that so far
ran eagerly.
"""
from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxrviewer.core.errors import CxrError, InferenceError
from cxrviewer.core.inference import protocol
from cxrviewer.core.model.failures import describe_model_failure
from cxrviewer.core.xai.cam import CAM, GRADCAM, METHODS

if TYPE_CHECKING:
    from cxrviewer.core.model.engine import ModelEngine

log = logging.getLogger("cxrviewer.worker")

IDLE_POLL_S = 0.25


@dataclass(frozen=True)
class WorkerOptions:
    """How to run the worker. `engine_factory` is "module:function" (picklable; tests give a fake)."""

    models_root: str | None = None
    engine_factory: str = "cxrviewer.core.inference.worker:open_worker_model"
    preload_tensorflow: bool = True
    log_level: int = logging.INFO


@dataclass(frozen=True)
class WorkerLog:
    """A log record of the worker, written to the viewer's log by the viewer."""

    level: int
    logger: str
    message: str


def open_worker_model(name_or_folder: str, root: Path | None) -> ModelEngine:
    """The real engine: ONNX Runtime first; TensorFlow without XLA, tracing a layer only once used."""
    from cxrviewer.core.model.engine import open_model

    return open_model(name_or_folder, root, xla=False, trace_lazily=True)


def resolve_factory(spec: str) -> Callable[[str, Path | None], Any]:
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def model_info(engine: Any) -> protocol.ModelInfo:
    dense_layer = engine.cam_layer_for_dense_weights
    return protocol.ModelInfo(
        name=engine.name,
        labels=tuple(engine.labels),
        conv_layers=tuple(engine.conv_layers),
        device=engine.device,
        default_layer=engine.default_layer,
        methods=tuple(m for m in METHODS if m != CAM or dense_layer is not None),
        dense_cam_layer=dense_layer,
        folder=Path(engine.folder) if getattr(engine, "folder", None) else None,
        card=engine.card,
        device_detail=f"{engine.runtime} in the inference worker process",
        layer_grids=tuple((name, rows, cols) for name, (rows, cols) in engine.layer_grids.items()),
        runtime=engine.runtime,
        input_size=int(engine.input_size),
    )


class _Inbox:
    """The newest of each kind of work, filled by the reader thread, emptied by the main thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._load: protocol.LoadModel | None = None
        self._infers: dict[str, protocol.Infer] = {}     # lane → its newest request
        self._sanity: protocol.RunSanity | None = None
        self._audit: protocol.RunAudit | None = None
        self.wanted_sanity = 0
        self.wanted_audit = 0
        self.stopped = False

    def put(self, message: object) -> None:
        with self._cond:
            if isinstance(message, protocol.Stop):
                self.stopped = True
            elif isinstance(message, protocol.LoadModel):
                self._load = message
                self._infers.clear()        # requests for the previous model are stale
            elif isinstance(message, protocol.Infer):
                self._infers[message.lane] = message
            elif isinstance(message, protocol.RunSanity):
                self._sanity = message
                self.wanted_sanity = message.request.request_id
            elif isinstance(message, protocol.RunAudit):
                self._audit = message
                self.wanted_audit = message.request.request_id
            elif isinstance(message, protocol.CancelAudit):
                self.wanted_audit = message.request_id
                if self._audit is not None and self._audit.request.request_id != message.request_id:
                    self._audit = None
            elif isinstance(message, protocol.CancelSanity):
                self.wanted_sanity = message.request_id
                if self._sanity is not None and self._sanity.request.request_id != message.request_id:
                    self._sanity = None
            self._cond.notify_all()

    def stop(self) -> None:
        self.put(protocol.Stop())

    def next(self, timeout: float | None) -> object | None:
        """Stop, else the newest load, else the newest request of the first lane that has one (main
        before compare), else the sanity check, else the audit; None on timeout."""
        with self._cond:
            if not self._has_work():
                self._cond.wait(timeout)
            if self.stopped:
                return protocol.Stop()
            if self._load is not None:
                item, self._load = self._load, None
                return item
            if self._infers:
                lane = next((lane for lane in protocol.LANES if lane in self._infers), next(iter(self._infers)))
                return self._infers.pop(lane)
            for name in ("_sanity", "_audit"):
                item = getattr(self, name)
                if item is not None:
                    setattr(self, name, None)
                    return item
            return None

    def infer_pending(self, lane: str) -> bool:
        """A newer request in `lane` (or a load, or Stop) arrived: the one running is superseded."""
        with self._cond:
            return lane in self._infers or self._load is not None or self.stopped

    def _has_work(self) -> bool:
        return self.stopped or bool(self._infers) or any(
            item is not None for item in (self._load, self._sanity, self._audit))


class _Outbox:
    """Sends to the viewer from any worker thread; a closed pipe (viewer gone) is ignored."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def send(self, message: object) -> None:
        with self._lock:
            try:
                self._connection.send(message)
            except (OSError, EOFError, BrokenPipeError):
                pass


class _ForwardingHandler(logging.Handler):
    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._outbox.send(WorkerLog(record.levelno, record.name, message))
        except Exception:  # logging must never take the worker down
            pass


def _read(requests: Connection, inbox: _Inbox) -> None:
    while True:
        try:
            message = requests.recv()
        except (EOFError, OSError):
            inbox.stop()   # the viewer is gone: nobody will read our answers
            return
        except Exception:  # an unreadable message: drop it, keep the worker alive
            log.exception("unreadable message from the viewer")
            continue
        inbox.put(message)
        if isinstance(message, protocol.Stop):
            return


class _Worker:
    def __init__(self, outbox: _Outbox, inbox: _Inbox, options: WorkerOptions) -> None:
        self._outbox = outbox
        self._inbox = inbox
        self._options = options
        self._factory = resolve_factory(options.engine_factory)
        self._root = Path(options.models_root) if options.models_root else None
        self._engine: Any = None
        self._no_model_reason = "no AI model has been loaded yet"
        self._answered = False
        self._preload: threading.Thread | None = None

    def run(self) -> None:
        while True:
            message = self._inbox.next(IDLE_POLL_S if self._has_idle_work() else None)
            if isinstance(message, protocol.Stop):
                return
            if message is None:
                self._idle()
            elif isinstance(message, protocol.LoadModel):
                self._load(message)
            elif isinstance(message, protocol.Infer):
                self._infer(message)
            elif isinstance(message, protocol.RunSanity):
                self._sanity(message)
            elif isinstance(message, protocol.RunAudit):
                self._audit(message)

    # -- work ---------------------------------------------------------------------------
    def _load(self, message: protocol.LoadModel) -> None:
        shown = Path(message.name_or_folder).name if ("/" in message.name_or_folder or "\\" in message.name_or_folder) \
            else message.name_or_folder
        self._outbox.send(protocol.ModelLoading(message.generation, shown or "default model"))
        try:
            engine = self._factory(message.name_or_folder, self._root)
            engine.warm_up()
            info = model_info(engine)
        except (CxrError, LookupError) as exc:
            self._fail_load(message.generation, exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc))
        except Exception as exc:  # keep the worker alive whatever the model does
            log.exception("loading model %r failed", message.name_or_folder)
            self._fail_load(message.generation, describe_model_failure("the AI model could not be loaded", exc))
        else:
            self._engine = engine
            self._answered = False
            self._preload = None
            self._outbox.send(protocol.ModelReady(message.generation, info))

    def _fail_load(self, generation: int, text: str) -> None:
        kept = self._engine.name if self._engine is not None else ""
        if self._engine is None:
            self._no_model_reason = text
        self._outbox.send(protocol.ModelFailed(generation, text, kept))

    def _infer(self, message: protocol.Infer) -> None:
        from cxrviewer.core.model.engine import run_on_input

        if self._engine is None:
            self._outbox.send(protocol.RequestFailed(message.request_id, f"No AI model is loaded: {self._no_model_reason}",
                                            message.lane))
            return
        try:
            prediction, cam = run_on_input(
                self._engine, message.request_id, message.item, message.class_index, message.method, message.layer)
        except CxrError as exc:
            self._outbox.send(protocol.RequestFailed(message.request_id, str(exc), message.lane))
            return
        except Exception as exc:  # a failing request must not take the worker down
            log.exception("inference request %d failed", message.request_id)
            self._outbox.send(protocol.RequestFailed(
                message.request_id, describe_model_failure("the AI result could not be computed", exc), message.lane))
            return
        self._answered = True
        if self._inbox.infer_pending(message.lane):
            return   # superseded in its lane while it ran: the newer request answers
        self._outbox.send(protocol.Answer(message.request_id, prediction, cam, message.lane))

    def _sanity(self, message: protocol.RunSanity) -> None:
        from cxrviewer.core.xai.sanity import randomisation_test_on_input

        request = message.request

        def compute(engine: Any) -> Any:
            tensorflow = engine.tensorflow()
            return randomisation_test_on_input(tensorflow.loaded, request.item.x, request.class_index, request.layer,
                                               request.method or GRADCAM, engine=tensorflow)

        self._check(request.request_id, request.item.image_key, self._inbox.wanted_sanity, compute,
                    protocol.SanityOutcome, protocol.SanityDone, "the sanity check failed")

    def _audit(self, message: protocol.RunAudit) -> None:
        from cxrviewer.core.xai.audit import explanation_audit

        request = message.request

        def compute(engine: Any) -> Any:
            shown, class_index, layer = request.method or GRADCAM, request.class_index, request.layer
            if class_index is None or layer is None:
                raise InferenceError("an explanation audit needs the class and the layer of the map on screen")
            maps = {method: engine.predict_and_cam(request.item.x, class_index, layer, method)[1]
                    for method in dict.fromkeys(("gradcam", "gradcam++", "hirescam", shown))}
            return explanation_audit(engine.predict, request.item.x, maps, shown, class_index,
                                     engine.labels[class_index], layer)

        self._check(request.request_id, request.item.image_key, self._inbox.wanted_audit, compute,
                    protocol.AuditOutcome, protocol.AuditDone, "the explanation audit failed")

    def _check(self, request_id: int, key: str, wanted: int, compute: Callable[[Any], Any],
               outcome: type, done: type, doing: str) -> None:
        """Run one cancellable check (sanity, audit) and send `done(outcome(...))`, whatever happens."""
        if request_id != wanted:
            return   # cancelled or superseded while it queued
        if self._engine is None:
            self._outbox.send(done(outcome(request_id, key, error=f"No AI model is loaded: {self._no_model_reason}")))
            return
        try:
            result = compute(self._engine)
        except CxrError as exc:
            answer = outcome(request_id, key, error=str(exc))
        except Exception as exc:  # a failing check must not take the worker down
            log.exception("%s (request %d)", doing, request_id)
            answer = outcome(request_id, key, error=describe_model_failure(doing, exc))
        else:
            answer = outcome(request_id, key, result=result)
        self._outbox.send(done(answer))

    # -- idle time ----------------------------------------------------------------------
    def _has_idle_work(self) -> bool:
        engine = self._engine
        if engine is None:
            return False
        if self._preload is None:
            return self._options.preload_tensorflow and self._answered and not engine.tensorflow_loaded
        return not self._preload.is_alive() and engine.tensorflow_loaded and getattr(engine, "has_untraced", True)

    def _idle(self) -> None:
        engine = self._engine
        if engine is None:
            return
        if self._preload is None:
            if self._options.preload_tensorflow and self._answered and not engine.tensorflow_loaded:
                self._preload = threading.Thread(
                    target=self._preload_tensorflow, args=(engine,), name="cxrviewer-tf-preload", daemon=True)
                self._preload.start()
            return
        if not self._preload.is_alive() and engine.tensorflow_loaded:
            engine.trace_pending()

    def _preload_tensorflow(self, engine: Any) -> None:
        started = time.perf_counter()
        engine.preload_tensorflow()
        if engine.tensorflow_loaded:
            self._outbox.send(protocol.TensorflowReady(engine.name, time.perf_counter() - started))


def serve(requests: Connection, results: Connection, options: WorkerOptions) -> None:
    """The worker process's entry point (multiprocessing target)."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl+C in a terminal is the viewer's to handle
    except (ValueError, OSError):
        pass
    threading.current_thread().name = "cxrviewer-inference"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # TensorFlow's C++ start-up chatter
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    outbox = _Outbox(results)
    root_logger = logging.getLogger()
    root_logger.handlers[:] = [_ForwardingHandler(outbox)]
    root_logger.setLevel(options.log_level)
    for noisy in ("tensorflow", "absl", "h5py", "keras"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    inbox = _Inbox()
    reader = threading.Thread(target=_read, args=(requests, inbox), name="cxrviewer-worker-reader", daemon=True)
    reader.start()
    try:
        _Worker(outbox, inbox, options).run()
    finally:
        try:
            results.close()
        except OSError:
            pass
    logging.shutdown()
    # Nothing to save here, and TensorFlow's interpreter-exit handlers can take seconds: leave now.
    os._exit(0)
