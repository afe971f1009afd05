"""The viewer's side of the inference worker process, without Qt.

One owner thread (the GUI thread) calls the commands. Two helper threads move messages:

* the sender preprocesses the newest request (`model_input` at the loaded model's size, so
  only ≤ 224² floats cross) and writes it to the worker; a request superseded before it is
  sent is never sent, and none is sent while the worker is (re)loading a model;
* the reader takes the worker's messages off the pipe and hands them to `deliver` (the Qt
  adapter queues them to the GUI thread); the end of the pipe means the worker died.

The owner passes each delivered event through `accept`, on its own thread: results whose
request id is no longer the newest of their lane are dropped there, never drawn.

Requests travel in lanes (protocol.LANES: "main" for the viewer, "compare" for the compare
pane). Newest-wins holds within a lane: a compare request never supersedes a main one.

A worker that dies (segfault, out of memory, `kill -9`) is replaced: the new one loads the
model the old one had and the newest unanswered request is sent again. After
`MAX_RESTARTS` deaths within `RESTART_WINDOW_S` it is not restarted (a model that crashes
its process on load would loop); `switch_model` tries again.
"""
from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cxrviewer.core.inference.protocol import (
    LANES,
    MAIN_LANE,
    Answer,
    AuditDone,
    AuditOutcome,
    CancelAudit,
    CancelSanity,
    Infer,
    LoadModel,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    RequestFailed,
    RunAudit,
    RunSanity,
    SanityDone,
    SanityOutcome,
    Stop,
    TensorflowReady,
    WorkerLost,
)
from cxrviewer.core.inference.worker import WorkerLog, WorkerOptions, serve
from cxrviewer.core.model.engine import ModelInput, prepare_input
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import MapRequest, XrayImage

log = logging.getLogger(__name__)
worker_log = logging.getLogger("cxrviewer.worker")

NO_MODEL = "No AI model is loaded"
MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0
STOP_GRACE_S = 0.5


@dataclass(frozen=True)
class _Wanted(MapRequest[XrayImage]):
    """The newest inference request of a lane, kept until the worker answers it (re-sent after a crash)."""

    lane: str = MAIN_LANE


class _Process:
    """One worker process and its two pipes."""

    def __init__(self, options: WorkerOptions) -> None:
        context = multiprocessing.get_context("spawn")   # never fork a process that runs Qt
        child_requests, self.requests = context.Pipe(duplex=False)
        self.results, child_results = context.Pipe(duplex=False)
        self.process = context.Process(
            target=serve, args=(child_requests, child_results, options), name="cxrviewer-inference", daemon=True)
        self.process.start()
        child_requests.close()   # else the end of the pipe is never seen when the worker dies
        child_results.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, message: object) -> bool:
        try:
            self.requests.send(message)
            return True
        except (OSError, EOFError, BrokenPipeError):
            return False

    def stop(self, grace_s: float) -> None:
        self.send(Stop())
        self.process.join(grace_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(0.2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(0.2)
        for connection in (self.requests, self.results):
            try:
                connection.close()
            except OSError:
                pass


class InferenceClient:
    """Commands from the owner thread; events to `deliver` from helper threads (see module doc)."""

    def __init__(self, deliver: Callable[[object], None], options: WorkerOptions | None = None,
                 max_restarts: int = MAX_RESTARTS) -> None:
        self._deliver = deliver
        self._options = options or WorkerOptions()
        self._max_restarts = max_restarts
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        # shared with the helper threads (under _cond)
        self._process: _Process | None = None
        self._controls: collections.deque[object] = collections.deque()
        self._wanted: dict[str, _Wanted] = {}   # lane → its newest request
        self._unsent: set[str] = set()          # lanes whose _wanted is not yet written to the current worker
        self._worker_size = 0                 # input size of the model the worker has ready
        self._worker_state = "none"           # "loading", "ready" or "none" (no model: requests fail at once)
        self._no_model_reason = "no AI model has been loaded yet"
        self._worker_model = ""               # what a replacement worker should load
        self._kept_info: ModelInfo | None = None
        self._latest_ids: dict[str, int] = dict.fromkeys(LANES, 0)
        self._stopping = False
        self._deaths: collections.deque[float] = collections.deque()
        # the owner thread's view
        self._generation = 0
        self._latest_sanity_id = 0
        self._latest_audit_id = 0
        self._model: ModelInfo | None = None
        self._sender: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the worker now (it imports its runtime while the window opens)."""
        with self._cond:
            if self._process is None and not self._stopping:
                self._spawn_locked()
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="cxrviewer-inference-sender", daemon=True)
                self._sender.start()

    def _spawn_locked(self) -> None:
        process = _Process(self._options)
        self._process = process
        self._worker_size = 0
        self._worker_state = "loading" if (self._worker_model or self._kept_info is not None) else "none"
        self._unsent = set(self._wanted)
        threading.Thread(target=self._read_loop, args=(process,), name="cxrviewer-inference-reader",
                         daemon=True).start()
        log.info("inference worker started (pid %s)", process.pid)

    @property
    def worker_pid(self) -> int | None:
        with self._cond:
            return self._process.pid if self._process is not None else None

    def shutdown(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the worker: asked first, terminated after `grace_s`, killed if it still runs."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            process, self._process = self._process, None
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(0.3)   # it must not be writing to the pipe while Stop is written
        if process is not None:
            process.stop(grace_s)

    # -- commands (owner thread) -----------------------------------------------------------
    @property
    def current_model(self) -> ModelInfo | None:
        return self._model

    @property
    def latest_request_id(self) -> int:
        """The newest request id of the main lane."""
        return self._latest_ids[MAIN_LANE]

    def latest_request_id_in(self, lane: str) -> int:
        return self._latest_ids[_checked(lane)]

    def switch_model(self, name_or_folder: str) -> int:
        """Load a model ("" = default); older results become stale. Returns the load generation."""
        self._generation += 1
        new_id = next(self._ids)
        self._latest_sanity_id = new_id
        self._latest_audit_id = new_id
        with self._cond:
            self._latest_ids = dict.fromkeys(LANES, new_id)
            self._wanted = {}
            self._unsent = set()
            self._worker_size = 0
            self._worker_state = "loading"
            self._controls.append(LoadModel(self._generation, str(name_or_folder)))
            self._controls.append(CancelSanity(new_id))
            self._controls.append(CancelAudit(new_id))
            self._worker_model = str(name_or_folder)
            if self._process is None and not self._stopping:
                self._deaths.clear()     # the user asked again: a worker that gave up may retry
                self._spawn_locked()
            self._cond.notify_all()
        self._model = None
        return self._generation

    def request(self, image: XrayImage, class_index: int | None = None, method: str | None = "gradcam",
                layer: str | None = None, lane: str = MAIN_LANE) -> int:
        """Ask for a prediction (+ a heat map unless `method` is None); only the newest of `lane` is answered."""
        _checked(lane)
        request_id = next(self._ids)
        with self._cond:
            self._latest_ids[lane] = request_id
            no_model = self._worker_state == "none"
            if not self._stopping and not no_model:
                self._wanted[lane] = _Wanted(request_id, image, class_index, method, layer, lane)
                self._unsent.add(lane)
                self._cond.notify_all()
            reason = self._no_model_reason
        if no_model and not self._stopping:
            self._deliver(RequestFailed(request_id, f"No AI model is loaded: {reason}", lane))
        return request_id

    def request_sanity(self, image: XrayImage, class_index: int | None, layer: str | None, method: str) -> int:
        """The model randomisation test in the worker; answered by SanityDone."""
        request_id = next(self._ids)
        self._latest_sanity_id = request_id
        self._send_check(image, lambda item: RunSanity(MapRequest(request_id, item, class_index, method, layer)),
                         lambda: SanityDone(SanityOutcome(request_id, image_key(image), error=NO_MODEL)))
        return request_id

    def request_audit(self, image: XrayImage, class_index: int, method: str, layer: str) -> int:
        """The explanation audit of one map (core/xai/audit.py) in the worker; answered by AuditDone."""
        request_id = next(self._ids)
        self._latest_audit_id = request_id
        self._send_check(image, lambda item: RunAudit(MapRequest(request_id, item, class_index, method, layer)),
                         lambda: AuditDone(AuditOutcome(request_id, image_key(image), error=NO_MODEL)))
        return request_id

    def _send_check(self, image: XrayImage, message: Callable[[ModelInput], object],
                    no_model: Callable[[], object]) -> None:
        """Send a check (sanity, audit) on `image` at the loaded model's input size, or answer "no model"."""
        size = self._model.input_size if self._model is not None else 0
        if size:
            self._control(message(prepare_input(image, size)))
        else:
            self._deliver(no_model())

    def cancel_audit(self) -> None:
        self._latest_audit_id = next(self._ids)
        self._control(CancelAudit(self._latest_audit_id))

    def cancel(self, lane: str = MAIN_LANE) -> None:
        """Forget the newest request of `lane`: nothing in flight in that lane is delivered."""
        _checked(lane)
        with self._cond:
            self._latest_ids[lane] = next(self._ids)
            self._wanted.pop(lane, None)
            self._unsent.discard(lane)

    def cancel_sanity(self) -> None:
        self._latest_sanity_id = next(self._ids)
        self._control(CancelSanity(self._latest_sanity_id))

    def _control(self, message: object) -> None:
        with self._cond:
            if not self._stopping:
                self._controls.append(message)
                self._cond.notify_all()

    # -- events (owner thread) -----------------------------------------------------------
    def accept(self, event: object) -> bool:
        """True when `event` should reach the user; updates the current model. Owner thread only."""
        if self._stopping:
            return False
        if isinstance(event, WorkerLog):
            worker_log.log(event.level, "%s", event.message)
            return False
        if isinstance(event, ModelLoading):
            return event.generation == self._generation
        if isinstance(event, ModelReady):
            if event.generation != self._generation:
                return False
            self._model = event.info
            return True
        if isinstance(event, ModelFailed):
            if event.generation != self._generation:
                return False
            self._model = self._kept_info if event.kept else None
            return True
        if isinstance(event, (Answer, RequestFailed)):
            return event.request_id == self._latest_ids.get(event.lane)
        if isinstance(event, SanityDone):
            return event.outcome.request_id == self._latest_sanity_id
        if isinstance(event, AuditDone):
            return event.outcome.request_id == self._latest_audit_id
        if isinstance(event, WorkerLost):
            if not event.restarting:
                self._model = None
            return True
        return isinstance(event, TensorflowReady)

    # -- helper threads ------------------------------------------------------------------
    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._controls and not self._ready_to_send():
                    self._cond.wait()
                if self._stopping:
                    return
                process = self._process
                controls = list(self._controls)
                self._controls.clear()
                ready = self._ready_to_send()
                wanted = [self._wanted[lane] for lane in LANES if lane in ready]
                size = self._worker_size
                self._unsent -= set(ready)
            if process is None:
                continue
            for message in controls:
                process.send(message)
            for request in wanted:
                self._send_request(process, request, size)

    def _ready_to_send(self) -> list[str]:
        """The lanes with a request not yet written to a worker that has its model ready."""
        if self._worker_state != "ready":
            return []
        return [lane for lane in LANES if lane in self._unsent and lane in self._wanted]

    def _send_request(self, process: _Process, wanted: _Wanted, size: int) -> None:
        try:
            item = prepare_input(wanted.item, size)
        except Exception as exc:  # a frame the model cannot take: say so like any failed request
            log.exception("preprocessing for request %d failed", wanted.request_id)
            self._deliver(RequestFailed(wanted.request_id, f"the image could not be prepared for the model: {exc}",
                                        wanted.lane))
            return
        with self._cond:
            if wanted.request_id != self._latest_ids[wanted.lane]:
                return   # superseded in its lane while it was prepared
        process.send(Infer(wanted.request_id, item, wanted.class_index, wanted.method, wanted.layer, wanted.lane))

    def _read_loop(self, process: _Process) -> None:
        while True:
            try:
                message = process.results.recv()
            except (EOFError, OSError):
                break
            except Exception:  # unpicklable or partial message: keep reading
                log.exception("unreadable message from the inference worker")
                continue
            self._note(message)
            self._deliver(message)
        self._on_worker_ended(process)

    def _note(self, message: object) -> None:
        """Bookkeeping the sender needs, done as soon as the worker reports it."""
        with self._cond:
            if isinstance(message, ModelReady):
                self._kept_info = message.info          # the worker runs this model now
                self._worker_model = str(message.info.folder or message.info.name)
                if message.generation == self._generation:
                    self._worker_size = message.info.input_size or 1
                    self._worker_state = "ready"
                    self._cond.notify_all()
            elif isinstance(message, ModelFailed) and message.generation == self._generation:
                if message.kept and self._kept_info is not None:
                    self._worker_size = self._kept_info.input_size or 1
                    self._worker_state = "ready"
                    self._worker_model = str(self._kept_info.folder or self._kept_info.name)
                else:
                    self._worker_size = 0
                    self._worker_state = "none"
                    self._no_model_reason = message.message
                    self._worker_model = ""
                    orphans, self._wanted = list(self._wanted.values()), {}
                    self._unsent = set()
                    for orphan in orphans:   # asked while the load ran: it cannot be answered
                        self._deliver(RequestFailed(orphan.request_id, f"No AI model is loaded: {message.message}",
                                                    orphan.lane))
                self._cond.notify_all()
            elif isinstance(message, (Answer, RequestFailed)):
                wanted = self._wanted.get(message.lane)
                if wanted is not None and message.request_id == wanted.request_id:
                    del self._wanted[message.lane]

    def _on_worker_ended(self, process: _Process) -> None:
        process.process.join(1.0)
        code = process.process.exitcode
        with self._cond:
            if self._stopping or self._process is not process:
                return
            self._process = None
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths and now - self._deaths[0] > RESTART_WINDOW_S:
                self._deaths.popleft()
            restarting = len(self._deaths) <= self._max_restarts
            name = self._worker_model
            if not restarting:
                self._worker_state = "none"
                self._no_model_reason = "the AI worker process keeps stopping"
                self._wanted = {}
                self._unsent = set()
            if restarting:
                self._controls.clear()
                self._spawn_locked()
                if name or self._kept_info is not None:
                    self._controls.append(LoadModel(self._generation, name))
                self._cond.notify_all()
        how = _describe_exit(code)
        log.warning("the inference worker stopped unexpectedly (%s)%s", how, "; restarting it" if restarting else "")
        message = (f"The AI worker stopped unexpectedly ({how}); it was restarted and your last request is re-sent."
                   if restarting else
                   f"The AI worker stopped unexpectedly ({how}) {len(self._deaths)} times within a minute; "
                   f"it is not restarted. Choose a model to try again.")
        self._deliver(WorkerLost(code, restarting, message))


def _checked(lane: str) -> str:
    if lane not in LANES:
        raise ValueError(f"unknown inference lane {lane!r} (expected one of {', '.join(LANES)})")
    return lane


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
