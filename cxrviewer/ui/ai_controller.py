"""Glue between MainWindow, InferenceService, the AI panel and the canvas overlay.

What happens when:

* start-up: the window is shown and painted first; only then does a zero-delay timer ask
  the InferenceService to load the default (or last used) model in its thread (importing
  TensorFlow there would otherwise compete with the first paint). The panel and the status bar say
  "Loading model…"; a model that is missing or fails its checksum leaves a plain viewer
  with a notice in the panel and a Retry button.
* image shown: one request (the service keeps only the newest). Every result is checked
  against the image shown NOW (`image_key`) and the model loaded now; anything else is
  dropped, so one image's map is never drawn on another.
* overlay controls: opacity → item opacity; colour map / threshold / style → recolour via
  the LUT; normalisation / absolute scale → rebuild the index image from the cached raw
  CAM; class / method / layer → the LRU cache, else exactly one request.
* one call: the panel's headline, the gate and read first all use `model_call` (the card's
  operating threshold on its score). The default map ("Model's call") is the called class's:
  when the worker's first map is of the arg-max class and the call differs (a borderline
  image), the called class's map is asked for once more.
* honest maps: a map of a class the model does not call is drawn into the item but kept
  hidden (`core.xai.sanity.heatmap_gate`) until "Show anyway"; a class the user picks by hand in
  the class list is shown at once, with the note that the model calls another class.
* read first (`set_results_hidden`): probabilities, top class and map stay hidden while
  results keep arriving — `prediction_shown` and `overlay_updated` still fire, so the
  read-first session can compare the trainee's call with them.
"""
from __future__ import annotations

import atexit
import logging
import math
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Generic, Hashable, TypeVar

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMenu

from cxrviewer.core.xai.cam import METHOD_LABELS
from cxrviewer.core.model_call import ModelCall, model_call
from cxrviewer.core.model.registry import default_model_name, scan_models
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.xai.overlay import cam_index_image
from cxrviewer.core.xai.overlay_style import overlay_shape
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.ui.ai_panel import AiPanel, MapLegend
from cxrviewer.ui.inference_service import InferenceService, ModelInfo
from cxrviewer.ui.overlay_controls import CamTarget
from cxrviewer.ui.overlay_item import CamOverlayItem

if TYPE_CHECKING:
    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.core.xai.sanity import HeatmapGate
    from cxrviewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CAM_CACHE_SIZE = 64          # raw CAMs are tiny (e.g. 6×6 floats); the bound is about entries
PREDICTION_CACHE_SIZE = 512
MODEL_SETTING = "ai/model"
ABSOLUTE_MAX_CARD_FIELD = "cam_absolute_max"   # optional card entry: number or {method: number}
OVERLAY_Z = 10.0
AUTOSTART_FALLBACK_MS = 1000   # start loading even if the window was shown but never painted
READ_FIRST_MESSAGE = "Read first: the AI result is hidden until you record your call in the Read first panel."
READ_FIRST_CAPTION = "Read first — AI hidden"


class LruCache(Generic[K, V]):
    """A small bounded mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop_if(self, predicate) -> None:
        for key in [key for key in self._items if predicate(key)]:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


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
    extra = getattr(info.card, "extra", None) or {}
    value = extra.get(ABSOLUTE_MAX_CARD_FIELD)
    if isinstance(value, dict):
        value = value.get(method)
    try:
        number = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 and math.isfinite(number) else None


def shortcut_warnings(card: ModelCard | None) -> tuple[str, ...]:
    """The card's shortcut warnings for the AI panel's banner (see teaching.ood.card_shortcut_risks)."""
    if card is None:
        return ()
    from cxrviewer.teaching.ood import card_shortcut_risks

    return card_shortcut_risks(card)


class AiController(QObject):
    """Owns the InferenceService, the AI dock, the overlay item and the Model menu of a window."""

    overlay_updated = Signal(str)      # image_key of the image whose map was just drawn
    prediction_shown = Signal(object)  # Prediction now in the panel
    failed = Signal(str)               # the model could not load, or a request failed

    def __init__(
        self,
        window: MainWindow,
        service: InferenceService | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__(window)
        self.setObjectName("aiController")
        self.window = window
        self.service = service if service is not None else InferenceService(self)
        self.panel = AiPanel(window)
        self.controls = self.panel.controls
        self.overlay = CamOverlayItem()
        window.canvas.add_overlay_item(self.overlay, OVERLAY_Z)
        self.legend = MapLegend(window.canvas)

        self._model: ModelInfo | None = None
        self._loading_name: str | None = None   # the model being loaded, None when not loading
        self._wanted = ""                       # the model last asked for (Retry reloads it)
        self._started = False
        self._stopped = False
        self._registered: list[str] = []
        self._weights_seen: dict[str, str] = {}
        self._cams: LruCache[tuple, CamResult] = LruCache(CAM_CACHE_SIZE)
        self._predictions: LruCache[tuple[str, str], Prediction] = LruCache(PREDICTION_CACHE_SIZE)
        self._absolute_max: dict[tuple[str, str, str], float] = {}
        self._pending: dict[int, CamTarget] = {}
        self._shown_cam: CamResult | None = None
        self._results_hidden = False             # read first: nothing of the result is shown
        self._shown_anyway: set[tuple[str, str, int]] = set()   # (model, image key, class) let through
        self._gate: HeatmapGate | None = None
        self._ood_shown_anyway: set[tuple[str, str]] = set()   # (model, image key) shown although flagged
        self._last_error = ""
        self._restarted = False                  # the worker died and was replaced: say so once ready
        self.requests_sent = 0   # diagnostics and tests: requests this controller made

        self.device_label = QLabel("AI: not loaded", window)
        self.device_label.setObjectName("aiDeviceLabel")
        self.device_label.setContentsMargins(6, 0, 6, 0)
        window.statusBar().insertPermanentWidget(1, self.device_label)

        self._create_actions()
        window.add_dock(self.panel)
        window.splitDockWidget(self.panel, window.tag_dock, Qt.Orientation.Vertical)
        self._scan_registry()
        self._connect()
        self._show_idle_state()
        self._autostart = autostart
        if autostart:
            window.installEventFilter(self)
        _shutdown_at_exit(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Start loading the model once the window has painted (or a second after it was shown)."""
        if watched is self.window and self._autostart and not self._started:
            if event.type() == QEvent.Type.Paint:
                self._autostart = False
                QTimer.singleShot(0, self, self._on_autostart_timeout)
            elif event.type() == QEvent.Type.Show:
                QTimer.singleShot(AUTOSTART_FALLBACK_MS, self, self._on_autostart_timeout)
        return False

    # ============================================================ public API
    def current_model(self) -> ModelInfo | None:
        return self._model

    def registered_models(self) -> list[str]:
        return list(self._registered)

    def last_error(self) -> str:
        return self._last_error

    def shown_cam(self) -> CamResult | None:
        """The raw CAM whose map is on the canvas now (None when none is)."""
        return self._shown_cam if self.overlay.has_overlay() else None

    def is_loading(self) -> bool:
        return self._loading_name is not None

    def current_prediction(self) -> Prediction | None:
        """The loaded model's prediction for the image shown (known even while hidden)."""
        model, key = self._model, self._current_key()
        return self._predictions.get((model.name, key)) if model is not None and key is not None else None

    def set_results_hidden(self, hidden: bool) -> None:
        """Read first: hide (True) or show the probabilities, top class and heat map.

        While hidden, new results are still computed, cached and announced through
        `prediction_shown` / `overlay_updated`, but nothing of them is drawn. Showing again
        draws what is cached for the image shown (no new request).
        """
        hidden = bool(hidden)
        if hidden == self._results_hidden:
            return
        self._results_hidden = hidden
        prediction = self.current_prediction()
        if hidden:
            self.panel.clear_prediction(READ_FIRST_MESSAGE if self.window.current_image() is not None else "")
            self.controls.set_top_label(None)
        elif prediction is not None:
            self._display_prediction(prediction)
        elif self.window.current_image() is not None:
            self.panel.clear_prediction("Waiting for the AI result…" if self._model is not None else "")
        self._update_heatmap_display()

    def results_hidden(self) -> bool:
        return self._results_hidden

    def current_call(self) -> ModelCall | None:
        """The model's call for the image shown (`core.model_call`), known even while hidden."""
        prediction = self.current_prediction()
        return self.call_of(prediction) if prediction is not None else None

    def call_of(self, prediction: Prediction) -> ModelCall | None:
        model = self._model
        if model is None or model.card is None or prediction.model_name != model.name:
            return None
        return model_call(prediction.labels, prediction.probabilities, model.card.operating_threshold)

    def heatmap_gate(self) -> HeatmapGate | None:
        """The operating-threshold decision for the map loaded now (None: no map or no prediction)."""
        return self._gate

    def is_shown_anyway(self) -> bool:
        """True when the map loaded now is not of the model's call and the user chose to see it
        (with "Show anyway", or by picking its class by hand)."""
        gate = self._gate
        cam = self.shown_cam()
        return (gate is not None and not gate.shown_by_default and cam is not None
                and ((cam.model_name, cam.image_key, cam.class_index) in self._shown_anyway
                     or self.controls.target().class_index == cam.class_index))

    def is_outside_training_data(self) -> bool:
        """True when the gate flagged the image shown (whether or not the user chose to see the result)."""
        prediction = self.current_prediction()
        return prediction is not None and prediction.outside_training_data

    def ood_hidden(self) -> bool:
        """True while the result of a flagged image is held back (no call, no map)."""
        prediction = self.current_prediction()
        return (prediction is not None and prediction.outside_training_data
                and (prediction.model_name, prediction.image_key) not in self._ood_shown_anyway)

    def show_anyway(self) -> None:
        """Show what is held back: a flagged image's result first, else a map below the operating threshold."""
        prediction = self.current_prediction()
        if prediction is not None and self.ood_hidden():
            self._ood_shown_anyway.add((prediction.model_name, prediction.image_key))
            if not self._results_hidden:
                self._display_prediction(prediction)
            self._update_heatmap_display()
            return
        cam = self.shown_cam()
        if cam is not None:
            self._shown_anyway.add((cam.model_name, cam.image_key, cam.class_index))
            self._update_heatmap_display()

    def switch_model(self, name: str) -> None:
        """Load a registered model by name ("" = the default) and re-run the current image."""
        if self._stopped:
            return
        self._started = True
        self._model = None
        self._loading_name = name
        self._wanted = name
        self._last_error = ""
        self._pending.clear()
        self._clear_overlay()
        shown = name or "default model"
        self.panel.select_model(name or None)
        self.panel.set_state(f"Loading model {shown}…")
        self.panel.clear_prediction("Loading model…" if self.window.current_image() is not None else "")
        self.controls.set_model(None)
        self.panel.set_shortcut_warning(())
        self.device_label.setText("AI: loading model…")
        self.device_label.setToolTip(f"Loading the AI model {shown}")
        self.service.switch_model(name)

    def disable_autostart(self) -> None:
        """Do not load a model by itself (e.g. a plain-viewer screenshot); switch_model still works."""
        self._autostart = False
        self._started = True

    def retry(self) -> None:
        """Scan the models folder again and reload the wanted (or default) model."""
        self._scan_registry()
        wanted = self._wanted
        if wanted and wanted not in self._registered:
            wanted = self._initial_model()
        self.switch_model(wanted)

    def set_overlay_visible(self, visible: bool) -> None:
        self.controls.set_overlay_visible(visible)

    def apply_default_layout(self) -> None:
        """Give the AI panel most of the right column's height (first start only)."""
        self.window.resizeDocks([self.panel, self.window.tag_dock], [640, 220], Qt.Orientation.Vertical)

    def shutdown(self) -> None:
        """Stop the inference worker process (within about a second). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.service.shutdown()

    # ======================================================== construction
    def _create_actions(self) -> None:
        window = self.window
        self.toggle_action = QAction("Show &Heat Map", window)
        self.toggle_action.setObjectName("action_heatmap")
        self.toggle_action.setCheckable(True)
        self.toggle_action.setChecked(self.controls.is_overlay_visible())
        self.toggle_action.setShortcut(QKeySequence("O"))
        self.toggle_action.setIconText("Heat map")
        self.toggle_action.setToolTip("Show or hide the AI heat map (O)")
        window.addAction(self.toggle_action)
        self.retry_action = QAction("&Retry Loading Model", window)
        self.retry_action.setObjectName("action_retry_model")

        menu = QMenu("&Model", window)
        menu.setObjectName("modelMenu")
        window.menuBar().insertMenu(window.menu("help").menuAction(), menu)
        self.model_menu = menu
        self._model_group = QActionGroup(self)
        self._model_group.setExclusive(True)
        window.toolbar.addSeparator()
        window.toolbar.addAction(self.toggle_action)

    def _rebuild_model_menu(self) -> None:
        menu = self.model_menu
        menu.clear()
        for action in self._model_group.actions():
            self._model_group.removeAction(action)
        current = self._model.name if self._model is not None else (self._loading_name or self._wanted)
        for name in self._registered:
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.setData(name)
            action.triggered.connect(lambda _=False, n=name: self._on_model_action_triggered(n))
            self._model_group.addAction(action)
        if not self._registered:
            menu.addAction("No models found").setEnabled(False)
        menu.addSeparator()
        menu.addAction(self.toggle_action)
        menu.addAction(self.retry_action)

    def _scan_registry(self) -> None:
        scan = scan_models()
        self._registered = [entry.name for entry in scan.models]
        current = self._model.name if self._model is not None else (self._loading_name or self._wanted)
        self.panel.set_models(self._registered, current or self._initial_model())
        self._rebuild_model_menu()

    def _initial_model(self) -> str:
        """The model to start with: the one used last time if still registered, else the default."""
        remembered = self.window.settings.qsettings.value(MODEL_SETTING, "")
        if remembered and str(remembered) in self._registered:
            return str(remembered)
        return default_model_name([_NameOnly(name) for name in self._registered]) or ""

    def _connect(self) -> None:
        service = self.service
        service.model_loading.connect(self._on_service_model_loading)
        service.model_ready.connect(self._on_service_model_ready)
        service.model_failed.connect(self._on_service_model_failed)
        service.model_kept.connect(self._on_service_model_kept)
        service.worker_lost.connect(self._on_service_worker_lost)
        service.prediction_ready.connect(self._on_service_prediction_ready)
        service.cam_ready.connect(self._on_service_cam_ready)
        service.request_failed.connect(self._on_service_request_failed)
        self.window.image_changed.connect(self._on_window_image_changed)
        self.panel.model_chosen.connect(self._on_panel_model_chosen)
        self.panel.retry_requested.connect(self.retry)
        self.panel.show_anyway_requested.connect(self.show_anyway)
        self.retry_action.triggered.connect(self.retry)
        self.toggle_action.toggled.connect(self._on_toggle_action_toggled)
        c = self.controls
        c.visibility_changed.connect(self._on_controls_visibility_changed)
        c.opacity_changed.connect(self._on_controls_opacity_changed)
        c.colormap_changed.connect(self._on_controls_colormap_changed)
        c.threshold_changed.connect(self._on_controls_threshold_changed)
        c.style_changed.connect(self._on_controls_style_changed)
        c.normalisation_changed.connect(self._on_controls_normalisation_changed)
        c.absolute_max_changed.connect(self._on_controls_absolute_max_changed)
        c.target_changed.connect(self._on_controls_target_changed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # ===================================================== the current image
    def _current_key(self) -> str | None:
        image = self.window.current_image()
        return image_key(image) if image is not None else None

    def _refresh(self) -> None:
        """Show cached results for the current image, model and target, or ask for them."""
        image = self.window.current_image()
        model = self._model
        if image is None or model is None:
            return
        key = image_key(image)
        prediction = self._predictions.get((model.name, key))
        target = self._resolved(self.controls.target(), prediction)
        if prediction is not None:
            self._show_prediction(prediction)
        cam = self._cams.get(self._cam_key(model.name, key, target))
        if cam is not None and prediction is not None:
            self._pending.clear()
            self.service.cancel()
            self._show_cam(cam, image)
            self.panel.set_state(self._ready_text(model))
            return
        self._request(image, target)

    def _request(self, image: XrayImage, target: CamTarget) -> None:
        request_id = self.service.request(image, target.class_index, target.method, target.layer)
        self._pending = {request_id: target}
        self.requests_sent += 1
        self.panel.set_state(f"Analysing {image.display_name}…")
        model = self._model
        if model is None or self._predictions.get((model.name, image_key(image))) is None:
            self.panel.clear_prediction(READ_FIRST_MESSAGE if self._results_hidden else "Analysing…")

    def _resolved(self, target: CamTarget, prediction: Prediction | None) -> CamTarget:
        """"Model's call" (class None) as the called class's index once the prediction is known."""
        if target.class_index is not None or prediction is None:
            return target
        call = self.call_of(prediction)
        if call is None:
            return target
        return CamTarget(prediction.labels.index(call.label), target.method, target.layer)

    def _cam_key(self, model: str, key: str, target: CamTarget) -> tuple:
        layer = target.layer or (self._model.default_layer if self._model is not None else None)
        return (model, key, target.class_index, target.method, layer)

    # =============================================================== drawing
    def _show_prediction(self, prediction: Prediction) -> None:
        if not self._results_hidden:
            self._display_prediction(prediction)
        self.prediction_shown.emit(prediction)

    def _display_prediction(self, prediction: Prediction) -> None:
        if prediction.outside_training_data \
                and (prediction.model_name, prediction.image_key) not in self._ood_shown_anyway:
            self.panel.clear_prediction(prediction.ood.message(prediction.model_name)
                                        + ". No call and no heat map: the model's answer here would be a guess.")
            self.controls.set_top_label(None)
            return
        card = self._model.card if self._model is not None else None
        pneumonia = card.pneumonia_labels if card is not None else ()
        call = self.call_of(prediction)
        self.panel.show_prediction(prediction, pneumonia, call)
        self.controls.set_top_label(call.label if call is not None else prediction.top_label)

    def _show_cam(self, cam: CamResult, image: XrayImage) -> None:
        """Build the index image from the raw CAM (current normalisation) and draw it (if allowed)."""
        index = cam_index_image(
            cam.cam, overlay_shape(image.shape), self.controls.normalisation(), self._scale_for(cam)
        )
        self.overlay.set_index_image(index, image.shape, cam.image_key)
        self.overlay.setOpacity(self.controls.opacity())
        self._shown_cam = cam
        self._update_heatmap_display()
        self.overlay_updated.emit(cam.image_key)

    def _gate_for(self, cam: CamResult | None) -> HeatmapGate | None:
        model = self._model
        if cam is None or model is None or model.card is None:
            return None
        prediction = self._predictions.get((cam.model_name, cam.image_key))
        if prediction is None or not 0 <= cam.class_index < len(prediction.labels):
            return None
        from cxrviewer.core.xai.sanity import heatmap_gate

        return heatmap_gate(prediction.labels, prediction.probabilities, cam.class_index,
                            model.card.operating_threshold)

    def _update_heatmap_display(self) -> None:
        """Overlay visibility, caption, threshold note and on-image legend from the current state."""
        cam = self.shown_cam()
        self._gate = gate = self._gate_for(cam)
        below = gate is not None and not gate.shown_by_default
        anyway = self.is_shown_anyway()
        ood_hidden = self.ood_hidden()
        allowed = cam is not None and not self._results_hidden and not ood_hidden and (not below or anyway)
        visible = allowed and self.controls.is_overlay_visible()
        self.overlay.setVisible(visible)
        if cam is None:
            self.panel.set_caption("")
            self.panel.set_gate("")
        elif self._results_hidden:
            self.panel.set_caption(READ_FIRST_CAPTION)
            self.panel.set_gate("")
        elif ood_hidden:
            prediction = self.current_prediction()
            self.panel.set_caption("")
            self.panel.set_gate(prediction.ood.message(prediction.model_name), offer_show=True)
        else:
            self.panel.set_caption(self._caption(cam))
            if self.is_outside_training_data():
                prediction = self.current_prediction()
                self.panel.set_gate(f"Shown anyway — {prediction.ood.message(prediction.model_name)}.")
            elif below and not anyway:
                self.panel.set_gate(gate.message, offer_show=True)
            elif below:
                self.panel.set_gate(gate.shown_anyway_message)
            else:
                self.panel.set_gate("")
        self._update_legend(cam if visible else None)

    def _update_legend(self, cam: CamResult | None) -> None:
        if cam is None:
            self.legend.hide()
            return
        prediction = self._predictions.get((cam.model_name, cam.image_key))
        label = self._model.labels[cam.class_index] if self._model is not None else str(cam.class_index)
        number = f"  p = {prediction.probability(label):.2f}" if prediction is not None else ""
        gate = self._gate
        note = f"  (not the call: {gate.call})" if self.is_shown_anyway() and gate is not None else ""
        if prediction is not None and prediction.outside_training_data:
            note += "  (outside training data)"
        absolute = self.controls.normalisation() == "absolute"
        self.legend.set_scale(self.controls.colormap(), self.controls.threshold(),
                              self.controls.absolute_max() if absolute else None)
        self.legend.set_content(f"Heat map: {label}{number}{note}")
        self.legend.show()

    def _scale_for(self, cam: CamResult) -> float | None:
        """The absolute scale's top for this model/method/layer (fixed once chosen), or None."""
        if self.controls.normalisation() != "absolute":
            return None
        key = (cam.model_name, cam.method, cam.layer)
        value = self._absolute_max.get(key)
        if value is None:
            recorded = card_absolute_max(self._model, cam.method) if self._model is not None else None
            # no reference in the card: fix the scale from the first map seen, then keep it
            value = recorded or nice_ceiling(float(cam.cam.max()) if cam.cam.size else 0.0)
            self._absolute_max[key] = value
        self.controls.show_absolute_max(value)
        return value

    def _caption(self, cam: CamResult) -> str:
        prediction = self._predictions.get((cam.model_name, cam.image_key))
        label = self._model.labels[cam.class_index] if self._model is not None else str(cam.class_index)
        method = METHOD_LABELS.get(cam.method, cam.method)
        details = f"{method}, layer {cam.layer}"
        if prediction is None:
            return f"Heat map for {label}\n{details}"
        return f"Heat map for {label} — p = {prediction.probability(label):.2f}\n{details}"

    def _clear_overlay(self) -> None:
        self.overlay.clear()
        self._shown_cam = None
        self._update_heatmap_display()

    def _redraw_shown_cam(self) -> None:
        cam = self._shown_cam
        image = self.window.current_image()
        if cam is None or image is None or cam.image_key != image_key(image):
            return
        self._show_cam(cam, image)

    def _ready_text(self, model: ModelInfo) -> str:
        return model.status_text

    def _show_idle_state(self) -> None:
        self.panel.set_state("The AI model loads in the background…")
        self.panel.clear_prediction("")

    # ============================================================ slots: window
    def _on_autostart_timeout(self) -> None:
        if not self._started and not self._stopped:
            self.switch_model(self._initial_model())

    def _on_window_image_changed(self, image: XrayImage | None) -> None:
        key = image_key(image) if image is not None else None
        if self.overlay.image_key() and self.overlay.image_key() != key:
            self._clear_overlay()   # never leave one image's map over another
        if image is None:
            self._pending.clear()
            self.service.cancel()
            self.panel.clear_prediction("No image")
            return
        if self._model is None:
            if self._loading_name is not None:
                self.panel.clear_prediction("Waiting for the model…")
            return
        self._refresh()

    def _on_panel_model_chosen(self, name: str) -> None:
        self._choose_model(name)

    def _on_model_action_triggered(self, name: str) -> None:
        self._choose_model(name)

    def _choose_model(self, name: str) -> None:
        current = self._model.name if self._model is not None else self._loading_name
        if name == current and self._model is not None:
            return
        self.window.settings.qsettings.setValue(MODEL_SETTING, name)
        self.switch_model(name)

    def _on_toggle_action_toggled(self, checked: bool) -> None:
        self.controls.set_overlay_visible(checked)

    # ============================================================ slots: service
    def _on_service_model_loading(self, name: str) -> None:
        self.panel.set_state(f"Loading model {name}…")

    def _on_service_model_ready(self, info: ModelInfo) -> None:
        sha = info.card.weights_sha256 if info.card is not None else ""
        if self._restarted and self._model is not None and self._model.name == info.name \
                and self._weights_seen.get(info.name) == sha:
            # the same model back after a worker restart: keep the user's class, method and layer
            self._restarted = False
            self._model = info
            self._last_error = ""
            self.panel.set_state(self._ready_text(info) + " (the AI worker was restarted after it stopped unexpectedly)")
            self.device_label.setText(info.status_text)
            self._refresh()
            return
        if self._weights_seen.get(info.name, sha) != sha:   # same name, new weights: forget old maps
            self._cams.drop_if(lambda key: key[0] == info.name)
            self._predictions.drop_if(lambda key: key[0] == info.name)
            self._absolute_max = {k: v for k, v in self._absolute_max.items() if k[0] != info.name}
        self._weights_seen[info.name] = sha
        self._model = info
        self._loading_name = None
        self._last_error = ""
        self.controls.set_model(info)
        self.panel.set_labels(info.labels, bool(info.card is not None and info.card.pneumonia_labels))
        self.panel.set_shortcut_warning(shortcut_warnings(info.card))
        if info.name not in self._registered:
            self._scan_registry()
        self.panel.select_model(info.name)
        self._rebuild_model_menu()
        self.panel.set_state(self._ready_text(info)
                             + (" (the AI worker was restarted after it stopped unexpectedly)" if self._restarted else ""))
        self._restarted = False
        self.device_label.setText(info.status_text)
        self.device_label.setToolTip(f"AI model {info.name} runs on {info.device}"
                                     + (f" ({info.device_detail})" if info.device_detail else ""))
        log.info("AI model %s ready on %s", info.name, info.device)
        if self.window.current_image() is None:
            self.panel.clear_prediction("Open an image to see the model's prediction.")
        self._refresh()

    def _on_service_model_failed(self, message: str) -> None:
        self._model = None
        self._loading_name = None
        self._last_error = message
        self._pending.clear()
        self._clear_overlay()
        self.controls.set_model(None)
        self.panel.set_state(
            f"AI model not available: {message}. The viewer works without it.", problem=True, retry=True
        )
        self.panel.clear_prediction("No AI result: no model is loaded.")
        self.device_label.setText("AI: unavailable")
        self.device_label.setToolTip(message)
        self._rebuild_model_menu()
        log.warning("AI model not available: %s", message)
        self.failed.emit(message)

    def _on_service_model_kept(self, message: str, kept: ModelInfo) -> None:
        """A switch failed: the previous model still runs; say why and keep working with it."""
        log.warning("model switch failed, keeping %s: %s", kept.name, message)
        self._on_service_model_ready(kept)
        self._last_error = message
        self.panel.set_state(f"Could not switch model: {message}. Still using {kept.name}.", problem=True)
        self.failed.emit(message)

    def _on_service_worker_lost(self, message: str, restarting: bool) -> None:
        """The worker process died: say so; when it is restarted, the model and the request follow."""
        self._last_error = message
        if restarting:
            self._restarted = True
            self.panel.set_state(message, problem=True)
            self.window.statusBar().showMessage(message, 15000)
            self.device_label.setText("AI: restarting…")
            return
        self._on_service_model_failed(message)

    def _on_service_prediction_ready(self, prediction: Prediction) -> None:
        model = self._model
        if model is None or prediction.model_name != model.name or prediction.image_key != self._current_key():
            log.debug("dropped a prediction for another image or model (request %d)", prediction.request_id)
            return
        self._predictions.put((model.name, prediction.image_key), prediction)
        self._show_prediction(prediction)
        self.panel.set_state(self._ready_text(model))

    def _on_service_cam_ready(self, cam: CamResult) -> None:
        model = self._model
        image = self.window.current_image()
        if model is None or image is None or cam.model_name != model.name or cam.image_key != image_key(image):
            log.debug("dropped a heat map for another image or model (request %d)", cam.request_id)
            return
        requested = self._pending.pop(cam.request_id, None)
        resolved = CamTarget(cam.class_index, cam.method, cam.layer)
        self._cams.put(self._cam_key(model.name, cam.image_key, resolved), cam)
        if requested is not None:
            wanted = self._resolved(requested, self._predictions.get((model.name, cam.image_key)))
            if wanted.class_index is not None and wanted.class_index != cam.class_index:
                # "Model's call" on a borderline image: the worker explained the top class; ask for the call's map
                self._request(image, CamTarget(wanted.class_index, requested.method, requested.layer))
                return
            if requested.class_index is not None:
                self._cams.put(self._cam_key(model.name, cam.image_key, requested), cam)
            if wanted != self._resolved(self.controls.target(), self._predictions.get((model.name, cam.image_key))):
                return   # the user picked another class/method/layer meanwhile
        self._show_cam(cam, image)

    def _on_service_request_failed(self, request_id: int, message: str) -> None:
        if request_id not in self._pending:
            return
        self._pending.clear()
        self._clear_overlay()
        self._last_error = message
        self.panel.set_state(f"No AI result: {message}", problem=True)
        self.panel.clear_prediction("")
        log.warning("AI request failed: %s", message)
        self.failed.emit(message)

    # =========================================================== slots: controls
    def _on_controls_visibility_changed(self, visible: bool) -> None:
        self._update_heatmap_display()
        if self.toggle_action.isChecked() != visible:
            self.toggle_action.setChecked(visible)

    def _on_controls_opacity_changed(self, opacity: float) -> None:
        self.overlay.setOpacity(opacity)

    def _on_controls_colormap_changed(self, name: str) -> None:
        self.overlay.set_colormap(name)
        self._update_legend(self.shown_cam() if self.overlay.isVisible() else None)

    def _on_controls_threshold_changed(self, threshold: float) -> None:
        self.overlay.set_threshold(threshold)
        self._update_legend(self.shown_cam() if self.overlay.isVisible() else None)

    def _on_controls_style_changed(self, style: str) -> None:
        self.overlay.set_style(style)

    def _on_controls_normalisation_changed(self, _mode: str) -> None:
        self._redraw_shown_cam()

    def _on_controls_absolute_max_changed(self, value: float) -> None:
        cam = self._shown_cam
        if cam is not None:
            self._absolute_max[(cam.model_name, cam.method, cam.layer)] = float(value)
        self._redraw_shown_cam()

    def _on_controls_target_changed(self, _target: CamTarget) -> None:
        self._refresh()


def _shutdown_at_exit(controller: AiController) -> None:
    """Join the inference thread at interpreter exit even if the window was never closed
    (Qt aborts the process when a running QThread is destroyed)."""
    reference = weakref.ref(controller)

    def stop() -> None:
        alive = reference()
        if alive is not None:
            try:
                alive.shutdown()
            except RuntimeError:   # the C++ side is already gone: nothing left to stop
                pass

    atexit.register(stop)


class _NameOnly:
    """Enough of a ModelCard for `default_model_name` (which only reads `.name`)."""

    def __init__(self, name: str) -> None:
        self.name = name
