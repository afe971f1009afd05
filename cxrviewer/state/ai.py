"""`AiSession`: the AI second reader's state and policy for one window, without Qt or TensorFlow.

It holds the loaded model, the image shown, the results per (model, image) and per map
target, the pending request, the operating-threshold and out-of-distribution gates and the
user's "show anyway" choices; it talks to the model only through `InferenceEngine`
(`request` / `cancel`, what `ui.inference_service.InferenceService` offers). The rules:

* newest wins: one pending request at a time; `refresh()` after an image, model or class
  change shows what is cached, else sends exactly one request;
* stale results are dropped: a prediction or map is used only when it is for the model
  loaded now and the image shown now, and a map only when it is (still) the one wanted;
* "Model's call" means the called class (`core.model_call`), not the arg-max: when the
  worker explained the top class of a borderline image, the call's map is asked for once more;
* gates (`heatmap()`): a flagged image (outside the training data) shows no call and no map
  until "show anyway"; a map of a class the model does not call stays hidden until "show
  anyway" or until the user picks that class by hand; read first hides everything while the
  results keep arriving.

The session announces changes through `Event`s; `ui.ai_controller` renders them.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.lru import LruCache
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.model_call import ModelCall, model_call
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.core.xai.sanity import HeatmapGate, heatmap_gate
from cxrviewer.state.events import Event
from cxrviewer.state.overlay import CamTarget, Cost, OverlayChange, OverlaySettings

__all__ = ["AiSession", "HeatmapState", "Held", "InferenceEngine", "nice_ceiling", "card_absolute_max"]

log = logging.getLogger(__name__)

CAM_CACHE_SIZE = 64          # raw CAMs are tiny (e.g. 6×6 floats); the bound is about entries
PREDICTION_CACHE_SIZE = 512
ABSOLUTE_MAX_CARD_FIELD = "cam_absolute_max"   # optional card entry: number or {method: number}


class InferenceEngine(Protocol):
    """The request API of the AI service the session drives (the newest request wins there too)."""

    def request(self, image: XrayImage, class_index: int | None = None, method: str | None = ...,
                layer: str | None = None) -> int: ...

    def cancel(self) -> None: ...


class Held(Enum):
    """Why the map (and for OOD also the call) is not on screen although it is known."""

    NOTHING = "nothing"              # shown (or there is no map)
    READ_FIRST = "read first"        # the trainee has not recorded a call yet
    OUTSIDE_DATA = "outside data"    # the image is unlike the training data: no call, no map
    NOT_THE_CALL = "not the call"    # the map explains a class the model does not call


@dataclass(frozen=True)
class HeatmapState:
    """What may be drawn now, and why not (one snapshot for the overlay, caption, gate and legend)."""

    cam: CamResult | None
    prediction: Prediction | None
    gate: HeatmapGate | None
    held: Held
    shown_anyway: bool             # a map of a class the model does not call, let through by the user
    outside_shown_anyway: bool     # a flagged image's result, let through by the user

    @property
    def allowed(self) -> bool:
        """True when the map may be drawn (the user's Show check still decides visibility)."""
        return self.cam is not None and self.held is Held.NOTHING

    @property
    def below_threshold(self) -> bool:
        return self.gate is not None and not self.gate.shown_by_default


def nice_ceiling(value: float) -> float:
    """The next "round" number ≥ value (1, 2, 2.5, 5 × 10^k): a readable colour-bar maximum."""
    if not value > 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0 ** exponent
        if candidate >= value * (1 - 1e-9):
            return float(f"{candidate:.6g}")
    return float(f"{10.0 ** (exponent + 1):.6g}")


def card_absolute_max(info: ModelInfo, method: str) -> float | None:
    """A reference maximum recorded by the trainer in the model card, if any."""
    extra = info.card.extra if info.card is not None else {}
    value = (extra or {}).get(ABSOLUTE_MAX_CARD_FIELD)
    if isinstance(value, dict):
        value = value.get(method)
    try:
        number = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 and math.isfinite(number) else None


CamKey = tuple[str, str, "int | None", str, "str | None"]


class AiSession:
    """The AI second reader's state for one window (see the module docstring for the rules)."""

    def __init__(self, engine: InferenceEngine, overlay: OverlaySettings | None = None) -> None:
        self.engine = engine
        self.overlay = overlay if overlay is not None else OverlaySettings()
        self.model: ModelInfo | None = None
        self.image: XrayImage | None = None
        self._key: str | None = None
        self._cams: LruCache[Hashable, CamResult] = LruCache(max_items=CAM_CACHE_SIZE)
        self._predictions: LruCache[tuple[str, str], Prediction] = LruCache(max_items=PREDICTION_CACHE_SIZE)
        self._absolute_max: dict[tuple[str, str, str], float] = {}
        self._weights_seen: dict[str, str] = {}
        self._pending: dict[int, CamTarget] = {}
        self._shown_cam: CamResult | None = None
        self._results_hidden = False
        self._shown_anyway: set[tuple[str, str, int]] = set()    # (model, image key, class) let through
        self._outside_shown_anyway: set[tuple[str, str]] = set()  # (model, image key) shown although flagged
        self.requests_sent = 0

        self.prediction_arrived: Event[Prediction] = Event("prediction for the image shown")
        self.cam_arrived: Event[CamResult] = Event("map to draw for the image shown")
        self.cam_cleared: Event[None] = Event("no map for the image shown")
        self.heatmap_changed: Event[HeatmapState] = Event("what may be drawn changed")
        self.request_sent: Event[int] = Event("a request went to the engine")
        self.request_failed: Event[str] = Event("the pending request failed")
        self.overlay.changed.connect(self._on_overlay_changed)

    # ============================================================ reading
    def current_key(self) -> str | None:
        return self._key

    def current_prediction(self) -> Prediction | None:
        """The loaded model's prediction for the image shown (known even while hidden)."""
        model, key = self.model, self._key
        return self._predictions.get((model.name, key)) if model is not None and key is not None else None

    def cached_prediction(self, model_name: str, key: str) -> Prediction | None:
        return self._predictions.peek((model_name, key))

    def shown_cam(self) -> CamResult | None:
        """The map built for the image shown now (drawn, or held back by a gate)."""
        return self._shown_cam

    def pending(self) -> dict[int, CamTarget]:
        return dict(self._pending)

    def results_hidden(self) -> bool:
        return self._results_hidden

    def call_of(self, prediction: Prediction) -> ModelCall | None:
        model = self.model
        if model is None or model.card is None or prediction.model_name != model.name:
            return None
        return model_call(prediction.labels, prediction.probabilities, model.card.operating_threshold)

    def current_call(self) -> ModelCall | None:
        prediction = self.current_prediction()
        return self.call_of(prediction) if prediction is not None else None

    def shown_call(self) -> ModelCall | None:
        """The call as it may be shown now: None while read first hides it or the image is held back
        as outside the training data (the call is still known: `current_call`)."""
        if self._results_hidden or self.outside_held():
            return None
        return self.current_call()

    def outside_training_data(self) -> bool:
        prediction = self.current_prediction()
        return prediction is not None and prediction.outside_training_data

    def outside_held(self) -> bool:
        """True while the result of a flagged image is held back (no call, no map)."""
        prediction = self.current_prediction()
        return (prediction is not None and prediction.outside_training_data
                and (prediction.model_name, prediction.image_key) not in self._outside_shown_anyway)

    def heatmap(self) -> HeatmapState:
        cam = self._shown_cam
        prediction = self.current_prediction()
        gate = self._gate_for(cam)
        below = gate is not None and not gate.shown_by_default
        anyway = below and cam is not None and (
            (cam.model_name, cam.image_key, cam.class_index) in self._shown_anyway
            or self.overlay.target.class_index == cam.class_index)
        if cam is None:
            held = Held.NOTHING
        elif self._results_hidden:
            held = Held.READ_FIRST
        elif self.outside_held():
            held = Held.OUTSIDE_DATA
        elif below and not anyway:
            held = Held.NOT_THE_CALL
        else:
            held = Held.NOTHING
        return HeatmapState(cam, prediction, gate, held, anyway,
                            self.outside_training_data() and not self.outside_held())

    def resolved(self, target: CamTarget, prediction: Prediction | None) -> CamTarget:
        """"Model's call" (class None) as the called class's index once the prediction is known."""
        if target.class_index is not None or prediction is None:
            return target
        call = self.call_of(prediction)
        if call is None:
            return target
        return CamTarget(prediction.labels.index(call.label), target.method, target.layer)

    def absolute_max_for(self, cam: CamResult) -> float:
        """The absolute scale's top for this model/method/layer: the card's, else fixed from the first map."""
        key = (cam.model_name, cam.method, cam.layer)
        value = self._absolute_max.get(key)
        if value is None:
            recorded = card_absolute_max(self.model, cam.method) if self.model is not None else None
            value = recorded or nice_ceiling(float(cam.cam.max()) if cam.cam.size else 0.0)
            self._absolute_max[key] = value
        return value

    # ============================================================ the model
    def set_model(self, info: ModelInfo, *, same_after_restart: bool = False) -> None:
        """A model is loaded (or the same one is back after a worker restart: keep everything)."""
        if not same_after_restart:
            sha = info.card.weights_sha256 if info.card is not None else ""
            if self._weights_seen.get(info.name, sha) != sha:   # same name, new weights: forget old results
                self._forget_model(info.name)
            self._weights_seen[info.name] = sha
        self.model = info

    def is_same_model(self, info: ModelInfo) -> bool:
        sha = info.card.weights_sha256 if info.card is not None else ""
        return self.model is not None and self.model.name == info.name and self._weights_seen.get(info.name) == sha

    def clear_model(self) -> None:
        """No model (loading another, or failed): nothing pending, no map."""
        self.model = None
        self._pending.clear()
        self.clear_cam()

    # ============================================================ the image and the target
    def set_image(self, image: XrayImage | None) -> None:
        """A new image is shown: its own cached results or one request (never another image's map)."""
        key = image_key(image) if image is not None else None
        self.image, self._key = image, key
        if self._shown_cam is not None and self._shown_cam.image_key != key:
            self.clear_cam()
        if image is None:
            self._pending.clear()
            self.engine.cancel()
            return
        self.refresh()

    def refresh(self) -> None:
        """Show cached results for the current image, model and target, or send exactly one request."""
        image, model = self.image, self.model
        if image is None or model is None:
            return
        key = image_key(image)
        prediction = self._predictions.get((model.name, key))
        target = self.resolved(self.overlay.target, prediction)
        if prediction is not None:
            self.prediction_arrived.emit(prediction)
        cam = self._cams.get(self._cam_key(model.name, key, target))
        if cam is not None and prediction is not None:
            self._pending.clear()
            self.engine.cancel()
            self._use_cam(cam)
            return
        self._request(image, target)

    def set_results_hidden(self, hidden: bool) -> bool:
        """Read first: hide or show results (they keep arriving). True when this changed anything."""
        hidden = bool(hidden)
        if hidden == self._results_hidden:
            return False
        self._results_hidden = hidden
        self.heatmap_changed.emit(self.heatmap())
        return True

    def show_anyway(self) -> bool:
        """Let through what is held back: a flagged image's result first, else a map of another class."""
        prediction = self.current_prediction()
        if prediction is not None and self.outside_held():
            self._outside_shown_anyway.add((prediction.model_name, prediction.image_key))
            self.heatmap_changed.emit(self.heatmap())
            return True
        cam = self._shown_cam
        if cam is not None:
            self._shown_anyway.add((cam.model_name, cam.image_key, cam.class_index))
            self.heatmap_changed.emit(self.heatmap())
            return True
        return False

    def set_absolute_max(self, value: float) -> None:
        cam = self._shown_cam
        if cam is not None:
            self._absolute_max[(cam.model_name, cam.method, cam.layer)] = float(value)

    def clear_cam(self) -> None:
        self._shown_cam = None
        self.cam_cleared.emit(None)
        self.heatmap_changed.emit(self.heatmap())

    # ============================================================ results from the engine
    def accept_prediction(self, prediction: Prediction) -> bool:
        """Keep a prediction for the model and image shown now; anything else is stale (False)."""
        model = self.model
        if model is None or prediction.model_name != model.name or prediction.image_key != self._key:
            log.debug("dropped a prediction for another image or model (request %d)", prediction.request_id)
            return False
        self._predictions.put((model.name, prediction.image_key), prediction)
        self.prediction_arrived.emit(prediction)
        return True

    def accept_cam(self, cam: CamResult) -> bool:
        """Use a map for the model and image shown now if it is still the one wanted (False: dropped)."""
        model, image = self.model, self.image
        if model is None or image is None or cam.model_name != model.name or cam.image_key != self._key:
            log.debug("dropped a heat map for another image or model (request %d)", cam.request_id)
            return False
        requested = self._pending.pop(cam.request_id, None)
        resolved = CamTarget(cam.class_index, cam.method, cam.layer)
        self._cams.put(self._cam_key(model.name, cam.image_key, resolved), cam)
        if requested is not None:
            prediction = self._predictions.get((model.name, cam.image_key))
            wanted = self.resolved(requested, prediction)
            if wanted.class_index is not None and wanted.class_index != cam.class_index:
                # "Model's call" on a borderline image: the worker explained the top class; ask for the call's map
                self._request(image, CamTarget(wanted.class_index, requested.method, requested.layer))
                return False
            if requested.class_index is not None:
                self._cams.put(self._cam_key(model.name, cam.image_key, requested), cam)
            if wanted != self.resolved(self.overlay.target, prediction):
                return False   # the user picked another class/method/layer meanwhile
        elif not self._is_wanted(resolved):
            log.debug("kept, not drawn: a heat map nobody waits for (request %d)", cam.request_id)
            return False
        self._use_cam(cam)
        return True

    def fail_request(self, request_id: int, message: str) -> bool:
        """The engine could not answer: True (and no map) when it was the pending request."""
        if request_id not in self._pending:
            return False
        self._pending.clear()
        self.clear_cam()
        self.request_failed.emit(message)
        return True

    # ============================================================ helpers
    def _request(self, image: XrayImage, target: CamTarget) -> None:
        request_id = self.engine.request(image, target.class_index, target.method, target.layer)
        self._pending = {request_id: target}
        self.requests_sent += 1
        self.request_sent.emit(request_id)

    def _use_cam(self, cam: CamResult) -> None:
        self._shown_cam = cam
        self.cam_arrived.emit(cam)
        self.heatmap_changed.emit(self.heatmap())

    def _is_wanted(self, target: CamTarget) -> bool:
        """True when `target` (a resolved one) is the map the overlay settings ask for now."""
        model = self.model
        key = self._key
        if model is None or key is None:
            return False
        prediction = self._predictions.peek((model.name, key))
        wanted = self.resolved(self.overlay.target, prediction)
        return self._cam_key(model.name, key, wanted) == self._cam_key(model.name, key, target)

    def _cam_key(self, model: str, key: str, target: CamTarget) -> Hashable:
        layer = target.layer or (self.model.default_layer if self.model is not None else None)
        return (model, key, target.class_index, target.method, layer)

    def _gate_for(self, cam: CamResult | None) -> HeatmapGate | None:
        model = self.model
        if cam is None or model is None or model.card is None:
            return None
        prediction = self._predictions.peek((cam.model_name, cam.image_key))
        if prediction is None or not 0 <= cam.class_index < len(prediction.labels):
            return None
        return heatmap_gate(prediction.labels, prediction.probabilities, cam.class_index,
                            model.card.operating_threshold)

    def _forget_model(self, name: str) -> None:
        for cache in (self._cams, self._predictions):
            for key in cache.keys():
                if isinstance(key, tuple) and key and key[0] == name:
                    cache.pop(key)
        self._absolute_max = {k: v for k, v in self._absolute_max.items() if k[0] != name}

    def _on_overlay_changed(self, change: OverlayChange) -> None:
        if change.cost is Cost.RECOMPUTE:
            self.refresh()
        elif change.field == "visible":
            self.heatmap_changed.emit(self.heatmap())
