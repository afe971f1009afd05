"""`ReadFirstFlow`: the trainee's read as an Enum state machine, without Qt.

    UNREAD ──choose a call / set the confidence──▶ READING ──record──▶ RECORDED ──result──▶ REVEALED
       ▲                                                                                     │
       └──────────────── a new image, or the same image shown again (a re-read) ─────────────┘

Rules (each one unit-tested in tests/unit/test_state_read_first.py):

* a call is recorded only with a call AND a confidence the trainee set (the slider's resting
  50 % is not a confidence); nothing is revealed before the call is recorded;
* read-first on: the AI result stays hidden until RECORDED (`ai_visible`); off: always shown;
* the comparison (`teaching.reads.compare_read`, scored on the model's CALL with the card's
  threshold) is built as soon as the recorded call, the prediction and, when a point was
  marked, the map are known; the read is then saved once for that viewing, with the OOD
  gate's flag when the image was flagged as unlike the model's training data;
* showing an image again starts a new read of it; saving that read supersedes the earlier
  one in the store (`ReadStore.add` keeps it as history).

Results may arrive before the flow hears of their image (a cached result is emitted first),
so predictions and maps are kept per image key for a few images.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from cxrviewer.core.errors import CxrError
from cxrviewer.core.lru import LruCache
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.state.events import Event
from cxrviewer.state.readonly import ReadOnly
from cxrviewer.teaching.known_label import known_label
from cxrviewer.teaching.reads import CALLS, ReadCall, ReadRecord, RevealComparison, calls_for_labels, compare_read

__all__ = ["ReadFirstFlow", "ReadState", "ReadSink", "Draft", "RESULTS_KEPT"]

log = logging.getLogger(__name__)

RESULTS_KEPT = 8   # results remembered per image key (a few images back and forth)
RESTING_CONFIDENCE = 50


class ReadState(Enum):
    UNREAD = "unread"        # an image to read, nothing entered yet
    READING = "reading"      # a call or a confidence entered, not recorded
    RECORDED = "recorded"    # the call is recorded; the AI may show; the comparison waits for the result
    REVEALED = "revealed"    # the comparison is shown

    @property
    def legacy_name(self) -> str:
        """The panel's old state strings: 'calling', 'waiting', 'revealed'."""
        return {ReadState.RECORDED: "waiting", ReadState.REVEALED: "revealed"}.get(self, "calling")


@runtime_checkable
class ReadSink(Protocol):
    """Where reads go (`teaching.reads.ReadStore`)."""

    def add(self, record: ReadRecord) -> ReadRecord: ...


@dataclass(frozen=True)
class Draft:
    """What the trainee has entered so far (before recording)."""

    call: str | None = None
    confidence: int = RESTING_CONFIDENCE
    confidence_set: bool = False
    point: tuple[float, float] | None = None

    def as_call(self) -> ReadCall | None:
        if self.call is None or not self.confidence_set:
            return None
        return ReadCall(self.call, self.confidence, self.point)


class ReadFirstFlow:
    """One window's read-first flow (see the module docstring)."""

    def __init__(self, sink: ReadSink | Callable[[], ReadSink] | None = None, enabled: bool = True) -> None:
        self._sink_source = sink
        self._enabled = bool(enabled)
        self._state = ReadState.UNREAD
        self._draft = Draft()
        self._recorded: ReadCall | None = None
        self._choices: tuple[str, ...] = CALLS
        self._image: XrayImage | None = None
        self._key: str | None = None
        self._known: str | None = None
        self._predictions: LruCache[str, Prediction] = LruCache(max_items=RESULTS_KEPT)
        self._cams: LruCache[str, CamResult] = LruCache(max_items=RESULTS_KEPT)
        self._thresholds: dict[str, float] = {}
        self._scale: tuple[str, float | None] = ("per_image", None)
        self._saved = False
        self._ai_visible = not self._enabled
        self.last_comparison: RevealComparison | None = None

        self.changed: Event[ReadState] = Event("state or draft changed")
        self.choices_changed: Event[tuple[str, ...]] = Event("call choices changed")
        self.call_recorded: Event[ReadCall] = Event("call recorded")
        self.revealed: Event[RevealComparison] = Event("comparison ready")
        self.ai_visibility_changed: Event[bool] = Event("AI may be shown")
        self.read_saved: Event[ReadRecord] = Event("read saved")
        self.problem: Event[str] = Event("read not saved")

    def set_sink(self, sink: ReadSink | Callable[[], ReadSink] | None) -> None:
        """Where reads are saved: a store, or a function that opens one on first use (None: the default store)."""
        self._sink_source = sink

    # ============================================================ reading
    state: ReadOnly[ReadState] = ReadOnly()
    draft: ReadOnly[Draft] = ReadOnly()
    recorded: ReadOnly[ReadCall | None] = ReadOnly()
    choices: ReadOnly[tuple[str, ...]] = ReadOnly()
    image: ReadOnly[XrayImage | None] = ReadOnly()

    def is_enabled(self) -> bool:
        return self._enabled

    def ai_visible(self) -> bool:
        return self._ai_visible

    def is_calling(self) -> bool:
        return self._state in (ReadState.UNREAD, ReadState.READING)

    def can_record(self) -> bool:
        return self.is_calling() and self._draft.as_call() is not None

    def current_prediction(self) -> Prediction | None:
        return self._predictions.peek(self._key) if self._key is not None else None

    def export_state(self) -> str | None:
        """For an export's sidecar: None (read-first off), "before reveal" or "revealed"."""
        if not self._enabled:
            return None
        return "revealed" if self._ai_visible else "before reveal"

    # ============================================================ the trainee's intents
    def choose(self, call: str) -> None:
        if not self.is_calling():
            return
        if call not in self._choices:
            raise ValueError(f"{call!r} is not one of the calls offered ({', '.join(self._choices)})")
        self._set_draft(Draft(call, self._draft.confidence, self._draft.confidence_set, self._draft.point))

    def set_confidence(self, value: int) -> None:
        """The trainee set the confidence (0–100): from now on it counts."""
        if not self.is_calling():
            return
        value = max(0, min(100, int(value)))
        self._set_draft(Draft(self._draft.call, value, True, self._draft.point))

    def set_point(self, x: float, y: float) -> None:
        if self.is_calling():
            self._set_draft(Draft(self._draft.call, self._draft.confidence, self._draft.confidence_set,
                                  (float(x), float(y))))

    def clear_point(self) -> None:
        if self.is_calling():
            self._set_draft(Draft(self._draft.call, self._draft.confidence, self._draft.confidence_set, None))

    def record(self) -> ReadCall | None:
        """Record the call (None, and nothing changes, without a call and a set confidence)."""
        call = self._draft.as_call()
        if call is None or not self.is_calling():
            return None
        self._recorded = call
        self._state = ReadState.RECORDED
        self.changed.emit(self._state)
        self.call_recorded.emit(call)
        self._set_ai_visible(True)
        self._update()
        return call

    def reveal(self, comparison: RevealComparison) -> bool:
        """Show `comparison` (False before the call is recorded: nothing is revealed then)."""
        if self._state not in (ReadState.RECORDED, ReadState.REVEALED):
            return False
        self.last_comparison = comparison
        self._state = ReadState.REVEALED
        self.changed.emit(self._state)
        self.revealed.emit(comparison)
        return True

    def reset(self) -> None:
        """Start the read of the image shown again: nothing chosen, nothing marked, the AI hidden."""
        self._state = ReadState.UNREAD
        self._draft = Draft()
        self._recorded = None
        self._saved = False
        self.last_comparison = None
        self.changed.emit(self._state)
        self._set_ai_visible(not self._enabled)

    # ============================================================ the window's inputs
    def set_enabled(self, enabled: bool) -> None:
        """Read-first mode on/off. Off: the AI shows at once and nothing is recorded."""
        self._enabled = bool(enabled)
        self._set_ai_visible(not self._enabled or not self.is_calling())
        self.changed.emit(self._state)

    def set_image(self, image: XrayImage | None) -> None:
        """An image is shown (a new one, or the same one again): a new read starts."""
        self._image = image
        self._key = image_key(image) if image is not None else None
        label = known_label(image.path) if image is not None else None
        self._known = label.label if label is not None else None
        self.reset()

    def set_choices(self, calls_or_labels: tuple[str, ...] | list[str]) -> None:
        """A model's class labels (the choices become its classes + Other), or calls; kept while calling only."""
        calls = tuple(calls_or_labels)
        calls = calls if calls and all(c == c.lower() for c in calls) and "other" in calls \
            else calls_for_labels(calls)
        if calls == self._choices:
            return
        self._choices = calls
        if self._draft.call is not None and self._draft.call not in calls:
            self._draft = Draft(None, self._draft.confidence, self._draft.confidence_set, self._draft.point)
        self.choices_changed.emit(calls)
        self.changed.emit(self._state)

    def set_model(self, model_name: str, labels: tuple[str, ...] | list[str], operating_threshold: float) -> None:
        """The loaded model: its classes are the call choices, its card threshold decides its call."""
        self._thresholds[model_name] = float(operating_threshold)
        if self.is_calling():
            self.set_choices(tuple(labels))

    def set_prediction(self, prediction: Prediction) -> None:
        self._predictions.put(prediction.image_key, prediction)
        if prediction.image_key == self._key:
            self._update()

    def set_cam(self, cam: CamResult | None) -> None:
        if cam is None:
            return
        self._cams.put(cam.image_key, cam)
        if cam.image_key == self._key:
            self._update()

    def set_hot_scale(self, normalisation: str = "per_image", absolute_max: float | None = None) -> None:
        """The overlay's scale, for reading the map at the marked point (until the read is saved)."""
        self._scale = (normalisation, absolute_max)
        if not self._saved:
            self._update()

    # ============================================================ helpers
    def _set_draft(self, draft: Draft) -> None:
        if draft == self._draft:
            return
        self._draft = draft
        entered = draft.call is not None or draft.confidence_set or draft.point is not None
        self._state = ReadState.READING if entered else ReadState.UNREAD
        self.changed.emit(self._state)

    def _set_ai_visible(self, visible: bool) -> None:
        if visible != self._ai_visible:
            self._ai_visible = visible
            self.ai_visibility_changed.emit(visible)

    def _update(self) -> None:
        call = self._recorded
        prediction = self.current_prediction()
        image = self._image
        if not self._enabled or call is None or prediction is None or image is None:
            return
        cam = self._cams.peek(self._key) if self._key is not None else None
        mode, absolute_max = self._scale
        comparison = compare_read(
            call, prediction.model_name, prediction.labels, prediction.probabilities,
            cam=None if cam is None else cam.cam, image_shape=image.shape,
            hot_threshold=None,                  # the mass rule, not the display threshold
            known_label=self._known, mode=mode, absolute_max=absolute_max,
            operating_threshold=self._thresholds.get(prediction.model_name),
            outside_training_data=prediction.outside_training_data,   # saved with the read (My Reads)
        )
        self.reveal(comparison)
        if not self._saved and (call.point is None or comparison.point_heat is not None):
            self._save(comparison, image)

    def _save(self, comparison: RevealComparison, image: XrayImage) -> None:
        self._saved = True
        if not image.sha256:
            self.problem.emit("This image has no content hash, so the read was not saved.")
            return
        try:
            record = self._sink().add(ReadRecord.from_comparison(comparison, image.sha256, image.frame_index))
        except (CxrError, ValueError) as exc:
            log.warning("read not saved: %s", exc)
            self.problem.emit(f"Your read could not be saved: {exc}")
            return
        self.read_saved.emit(record)

    def _sink(self) -> ReadSink:
        source = self._sink_source
        if isinstance(source, ReadSink):
            return source
        if source is None:
            from cxrviewer.teaching.reads import ReadStore

            opened: ReadSink = ReadStore()
        else:
            opened = source()
        self._sink_source = opened
        return opened

    def sink(self) -> ReadSink:
        """The reads store (opened on first use)."""
        return self._sink()

    def sink_if_open(self) -> ReadSink | None:
        source = self._sink_source
        return source if isinstance(source, ReadSink) else None
