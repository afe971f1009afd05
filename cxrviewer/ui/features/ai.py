"""The AI second reader's Qt side: the service's signals into `AiSession`, the session's events onto widgets.

What happens when:

* start-up: the window is shown and painted first; only then does a zero-delay timer ask
  the InferenceService to load the default (or last used) model (its worker process would
  otherwise compete with the first paint). The panel and the status bar say "Loading
  model…"; a model that is missing or fails its checksum leaves a plain viewer with a
  notice in the panel and a Retry button.
* image shown (`ViewerSession.image_changed`), class / method / layer change
  (`OverlaySettings`, cost RECOMPUTE): `AiSession` shows what is cached or sends exactly one
  request, and drops any result not for the model and image shown now (`state/ai.py`).
* cheaper overlay changes: opacity → item opacity; colour map / threshold / style → recolour
  via the LUT; normalisation / absolute scale → rebuild the index image from the raw CAM.
* gates and read first: `AiSession.heatmap()` says what may be drawn; `HeatmapView` says why
  not. While read first hides results they keep arriving: `prediction_shown` and
  `overlay_updated` still fire, so the read-first flow can compare the trainee's call with them.

The controller gets a `Shell` (status bar, dock, menus), the canvas, the viewer session and
the AI session with the inference service it talks to (the window creates both), never the
MainWindow.
"""
from __future__ import annotations

import atexit
import logging
import weakref

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model_call import ModelCall
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.core.xai.overlay import cam_index_image
from cxrviewer.core.xai.overlay_style import overlay_shape
from cxrviewer.core.xai.sanity import HeatmapGate
from cxrviewer.state.ai import AiSession, HeatmapState
from cxrviewer.state.overlay import CamTarget, OverlayChange, OverlaySettings
from cxrviewer.state.session import ViewerSession
from cxrviewer.ui.docks.ai_panel import AiPanel, MapLegend
from cxrviewer.ui.features.heatmap_view import READ_FIRST_CAPTION, HeatmapView
from cxrviewer.ui.features.model_menu import ModelMenu
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.overlay_item import CamOverlayItem
from cxrviewer.ui.workers.inference_service import InferenceService

__all__ = ["AiController", "READ_FIRST_CAPTION", "READ_FIRST_MESSAGE", "shortcut_warnings"]

log = logging.getLogger(__name__)

OVERLAY_Z = 10.0
AUTOSTART_FALLBACK_MS = 1000   # start loading even if the window was shown but never painted
READ_FIRST_MESSAGE = "Read first: the AI result is hidden until you record your call in the Read first panel."
RESTARTED_NOTE = " (the AI worker was restarted after it stopped unexpectedly)"


def shortcut_warnings(card: ModelCard | None) -> tuple[str, ...]:
    """The card's shortcut warnings for the AI panel's banner (see teaching.ood.card_shortcut_risks)."""
    if card is None:
        return ()
    from cxrviewer.teaching.ood import card_shortcut_risks

    return card_shortcut_risks(card)


class AiController(QObject):
    """Drives the AI dock, the overlay item and the Model menu of a window from the AiSession and InferenceService it is handed."""

    overlay_updated = Signal(str)      # image_key of the image whose map was just drawn
    prediction_shown = Signal(object)  # Prediction now in the panel
    failed = Signal(str)               # the model could not load, or a request failed

    def __init__(self, shell: Shell, canvas: ImageCanvas, viewer: ViewerSession, session: AiSession,
                 service: InferenceService, qsettings: QSettings, autostart: bool = True) -> None:
        host = shell.host()
        super().__init__(host)
        self.setObjectName("aiController")
        self.shell, self.viewer, self._host = shell, viewer, host
        self.service, self.session = service, session   # the window's: `session.engine` is `service`
        self.overlay_settings: OverlaySettings = session.overlay
        self.panel = AiPanel(host)
        self.controls = self.panel.controls
        self.model_card_requested = self.panel.model_card_requested   # the panel's "Model card…" button
        self.overlay = CamOverlayItem()
        canvas.add_overlay_item(self.overlay, OVERLAY_Z)
        self.legend = MapLegend(canvas)
        self.view = HeatmapView(self.panel, self.overlay, self.legend, self.overlay_settings)
        self.menu = ModelMenu(shell, qsettings, self.controls.is_overlay_visible(), self)
        self.toggle_action, self.retry_action = self.menu.toggle_action, self.menu.retry_action
        self.model_menu = self.menu.menu

        self._loading_name: str | None = None   # the model being loaded, None when not loading
        self._wanted = ""                       # the model last asked for (Retry reloads it)
        self._started = False
        self._stopped = False
        self._last_error = ""
        self._restarted = False                  # the worker died and was replaced: say so once ready
        self._just_drawn: str | None = None      # image key of a map drawn, until the view has rendered it

        self.device_label = QLabel("AI: not loaded", host)
        self.device_label.setObjectName("aiDeviceLabel")
        self.device_label.setContentsMargins(6, 0, 6, 0)
        shell.add_status_widget(self.device_label, 1)
        shell.add_dock(self.panel)
        shell.split_docks(self.panel, "tags", Qt.Orientation.Vertical)
        self._scan_registry()
        self._connect()
        self.panel.set_state("The AI model loads in the background…")
        self.panel.clear_prediction("")
        self._autostart = autostart
        if autostart:
            host.installEventFilter(self)
        _shutdown_at_exit(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Start loading the model once the window has painted (or a second after it was shown)."""
        if watched is self._host and self._autostart and not self._started:
            if event.type() == QEvent.Type.Paint:
                self._autostart = False
                QTimer.singleShot(0, self, self._on_autostart_timeout)
            elif event.type() == QEvent.Type.Show:
                QTimer.singleShot(AUTOSTART_FALLBACK_MS, self, self._on_autostart_timeout)
        return False

    # ============================================================ public API (read from the session)
    def current_model(self) -> ModelInfo | None:
        return self.session.model

    def registered_models(self) -> list[str]:
        return self.menu.registered()

    def last_error(self) -> str:
        return self._last_error

    @property
    def requests_sent(self) -> int:
        return self.session.requests_sent

    def shown_cam(self) -> CamResult | None:
        """The raw CAM whose map is on the canvas now (None when none is)."""
        return self.session.shown_cam() if self.overlay.has_overlay() else None

    def is_loading(self) -> bool:
        return self._loading_name is not None

    def current_prediction(self) -> Prediction | None:
        return self.session.current_prediction()

    def current_call(self) -> ModelCall | None:
        return self.session.current_call()

    def heatmap_gate(self) -> HeatmapGate | None:
        return self.session.heatmap().gate if self.shown_cam() is not None else None

    def is_shown_anyway(self) -> bool:
        return self.shown_cam() is not None and self.session.heatmap().shown_anyway

    def ood_hidden(self) -> bool:
        return self.session.outside_held()

    def results_hidden(self) -> bool:
        return self.session.results_hidden()

    def overlay_visible(self) -> bool:
        return self.overlay.isVisible()

    # ============================================================ intents
    def set_results_hidden(self, hidden: bool) -> None:
        """Read first: hide (True) or show the probabilities, top class and heat map (no new request)."""
        if not self.session.set_results_hidden(hidden):
            return
        prediction = self.current_prediction()
        has_image = self.viewer.image is not None
        if hidden:
            self.panel.clear_prediction(READ_FIRST_MESSAGE if has_image else "")
            self.controls.set_top_label(None)
        elif prediction is not None:
            self._display_prediction(prediction)
        elif has_image:
            self.panel.clear_prediction("Waiting for the AI result…" if self.session.model is not None else "")

    def show_anyway(self) -> None:
        """Show what is held back: a flagged image's result first, else a map below the operating threshold."""
        outside = self.session.outside_held()
        self.session.show_anyway()
        prediction = self.current_prediction()
        if outside and prediction is not None and not self.session.results_hidden():
            self._display_prediction(prediction)

    def switch_model(self, name: str) -> None:
        """Load a registered model by name ("" = the default) and re-run the current image."""
        if self._stopped:
            return
        self._started = True
        self._loading_name = name
        self._wanted = name
        self._last_error = ""
        self.session.clear_model()
        self.overlay.clear()
        shown = name or "default model"
        self.panel.select_model(name or None)
        self.panel.set_state(f"Loading model {shown}…")
        self.panel.clear_prediction("Loading model…" if self.viewer.image is not None else "")
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
        if wanted and wanted not in self.menu.registered():
            wanted = self.menu.initial_model()
        self.switch_model(wanted)

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_settings.set_visible(visible)

    def apply_default_layout(self) -> None:
        """Give the AI panel most of the right column's height (first start only)."""
        self.shell.size_docks(["aiDock", "tags"], [640, 220], Qt.Orientation.Vertical)

    def shutdown(self) -> None:
        """Stop the inference worker process (within about a second). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self.service.shutdown()

    # ============================================================ wiring
    def _connect(self) -> None:
        service, session = self.service, self.session
        service.model_loading.connect(self._on_service_model_loading)
        service.model_ready.connect(self._on_service_model_ready)
        service.model_failed.connect(self._on_service_model_failed)
        service.model_kept.connect(self._on_service_model_kept)
        service.worker_lost.connect(self._on_service_worker_lost)
        service.prediction_ready.connect(self._on_service_prediction_ready)
        service.cam_ready.connect(session.accept_cam)
        service.request_failed.connect(session.fail_request)
        session.prediction_arrived.connect(self._on_session_prediction_arrived)
        session.cam_arrived.connect(self._on_session_cam_arrived)
        session.cam_cleared.connect(lambda _none: self.overlay.clear())
        session.heatmap_changed.connect(self._on_session_heatmap_changed)
        session.request_sent.connect(self._on_session_request_sent)
        session.request_failed.connect(self._on_session_request_failed)
        self.viewer.image_changed.connect(self._on_viewer_image_changed)
        for chooser in (self.panel, self.menu):   # the AI panel's model box and the Model menu
            chooser.model_chosen.connect(self._choose_model)
        for retry in (self.panel.retry_requested, self.retry_action.triggered):
            retry.connect(self.retry)
        self.panel.show_anyway_requested.connect(self.show_anyway)
        s = self.overlay_settings   # widget intents → the settings model: each control's X_changed → set_X
        for visibility in (self.toggle_action.toggled, self.controls.visibility_changed):
            visibility.connect(s.set_visible)
        for name in ("opacity", "colormap", "threshold", "style", "normalisation", "absolute_max", "target"):
            getattr(self.controls, f"{name}_changed").connect(getattr(s, f"set_{name}"))
        s.changed.connect(self._on_overlay_settings_changed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _scan_registry(self) -> None:
        model = self.session.model
        current = model.name if model is not None else (self._loading_name or self._wanted)
        names = self.menu.scan(current)
        self.panel.set_models(names, current or self.menu.initial_model())

    def _rebuild_menu(self) -> None:
        model = self.session.model
        self.menu.rebuild(model.name if model is not None else (self._loading_name or self._wanted))

    # ============================================================ drawing
    def _display_prediction(self, prediction: Prediction) -> None:
        if self.session.outside_held() and prediction.ood is not None:
            self.panel.clear_prediction(prediction.ood.message(prediction.model_name)
                                        + ". No call and no heat map: the model's answer here would be a guess.")
            self.controls.set_top_label(None)
            return
        model = self.session.model
        pneumonia = model.card.pneumonia_labels if model is not None and model.card is not None else ()
        call = self.session.call_of(prediction)
        self.panel.show_prediction(prediction, pneumonia, call)
        self.controls.set_top_label(call.label if call is not None else prediction.top_label)

    def _draw_cam(self, cam: CamResult, image: XrayImage) -> None:
        """Build the index image from the raw CAM (current normalisation) and hand it to the overlay item."""
        scale = None
        if self.overlay_settings.normalisation == "absolute":
            scale = self.session.absolute_max_for(cam)
            self.overlay_settings.set_absolute_max_quietly(scale)
            self.controls.show_absolute_max(scale)
        index = cam_index_image(cam.cam, overlay_shape(image.shape), self.overlay_settings.normalisation, scale)
        self.overlay.set_index_image(index, image.shape, cam.image_key)
        self.overlay.setOpacity(self.overlay_settings.opacity)

    def _redraw_shown_cam(self) -> None:
        cam, image = self.session.shown_cam(), self.viewer.image
        if cam is not None and image is not None and cam.image_key == self.session.current_key():
            self._draw_cam(cam, image)
            self.view.render(self.session.heatmap(), self.session.model)
            self.overlay_updated.emit(cam.image_key)

    # ============================================================ slots: the session
    def _on_session_prediction_arrived(self, prediction: Prediction) -> None:
        if not self.session.results_hidden():
            self._display_prediction(prediction)
        self.prediction_shown.emit(prediction)

    def _on_session_cam_arrived(self, cam: CamResult) -> None:
        image = self.viewer.image
        if image is None:
            return
        self._draw_cam(cam, image)
        model = self.session.model
        if model is not None:
            self.panel.set_state(model.status_text)
        self._just_drawn = cam.image_key   # announced once the view has rendered (heatmap_changed follows)

    def _on_session_heatmap_changed(self, state: HeatmapState) -> None:
        self.view.render(state, self.session.model)
        key, self._just_drawn = self._just_drawn, None
        if key is not None:
            self.overlay_updated.emit(key)

    def _on_session_request_sent(self, _request_id: int) -> None:
        image, model = self.viewer.image, self.session.model
        if image is None:
            return
        self.panel.set_state(f"Analysing {image.display_name}…")
        if model is None or self.session.current_prediction() is None:
            self.panel.clear_prediction(READ_FIRST_MESSAGE if self.session.results_hidden() else "Analysing…")

    def _on_session_request_failed(self, message: str) -> None:
        self._last_error = message
        self.panel.set_state(f"No AI result: {message}", problem=True)
        self.panel.clear_prediction("")
        log.warning("AI request failed: %s", message)
        self.failed.emit(message)

    def _on_overlay_settings_changed(self, change: OverlayChange) -> None:
        """Each change costs only what it must (see state/overlay.py); the widget follows the model."""
        name, value, c = change.field, change.value, self.controls
        if name == "visible":
            c.set_overlay_visible(value)
            if self.toggle_action.isChecked() != value:
                self.toggle_action.setChecked(value)
        elif name == "opacity":
            c.set_opacity(value)
            self.overlay.setOpacity(value)
        elif name in ("colormap", "threshold", "style"):
            getattr(c, f"set_{name}")(value)
            getattr(self.overlay, f"set_{name}")(value)
            if name != "style":
                self.view.render_legend(self.session.heatmap() if self.overlay.isVisible() else None,
                                        self.session.model)
        elif name == "normalisation":
            c.set_normalisation(value)
            self._redraw_shown_cam()
        elif name == "absolute_max":
            c.show_absolute_max(value)
            self.session.set_absolute_max(value)
            self._redraw_shown_cam()
        elif name == "target" and isinstance(value, CamTarget):
            c.set_target(value)

    # ============================================================ slots: the window and the service
    def _on_autostart_timeout(self) -> None:
        if not self._started and not self._stopped:
            self.switch_model(self.menu.initial_model())

    def _on_viewer_image_changed(self, image: XrayImage | None) -> None:
        self.session.set_image(image)
        if image is None:
            self.panel.clear_prediction("No image")
        elif self.session.model is None and self._loading_name is not None:
            self.panel.clear_prediction("Waiting for the model…")

    def _choose_model(self, name: str) -> None:
        model = self.session.model
        if model is not None and name == model.name:
            return
        self.menu.remember(name)
        self.switch_model(name)

    def _on_service_model_loading(self, name: str) -> None:
        self.panel.set_state(f"Loading model {name}…")

    def _on_service_model_ready(self, info: ModelInfo) -> None:
        if self._restarted and self.session.is_same_model(info):
            # the same model back after a worker restart: keep the user's class, method and layer
            self._restarted = False
            self.session.set_model(info, same_after_restart=True)
            self._last_error = ""
            self.panel.set_state(info.status_text + RESTARTED_NOTE)
            self.device_label.setText(info.status_text)
            self.session.refresh()
            return
        self.session.set_model(info)
        self._loading_name = None
        self._last_error = ""
        self.controls.set_model(info)
        self.overlay_settings.set_target_quietly(self.controls.target())
        self.panel.set_labels(info.labels, bool(info.card is not None and info.card.pneumonia_labels))
        self.panel.set_shortcut_warning(shortcut_warnings(info.card))
        if info.name not in self.menu.registered():
            self._scan_registry()
        self.panel.select_model(info.name)
        self._rebuild_menu()
        self.panel.set_state(info.status_text + (RESTARTED_NOTE if self._restarted else ""))
        self._restarted = False
        self.device_label.setText(info.status_text)
        self.device_label.setToolTip(f"AI model {info.name} runs on {info.device}"
                                     + (f" ({info.device_detail})" if info.device_detail else ""))
        log.info("AI model %s ready on %s", info.name, info.device)
        if self.viewer.image is None:
            self.panel.clear_prediction("Open an image to see the model's prediction.")
        self.session.refresh()

    def _on_service_model_failed(self, message: str) -> None:
        self._loading_name = None
        self._last_error = message
        self.session.clear_model()
        self.overlay.clear()
        self.controls.set_model(None)
        self.panel.set_state(f"AI model not available: {message}. The viewer works without it.",
                             problem=True, retry=True)
        self.panel.clear_prediction("No AI result: no model is loaded.")
        self.device_label.setText("AI: unavailable")
        self.device_label.setToolTip(message)
        self._rebuild_menu()
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
            self.shell.show_status(message, 15000)
            self.device_label.setText("AI: restarting…")
            return
        self._on_service_model_failed(message)

    def _on_service_prediction_ready(self, prediction: Prediction) -> None:
        model = self.session.model
        if self.session.accept_prediction(prediction) and model is not None:
            self.panel.set_state(model.status_text)


def _shutdown_at_exit(controller: AiController) -> None:
    """Stop the worker at interpreter exit even if the window was never closed."""
    reference = weakref.ref(controller)

    def stop() -> None:
        alive = reference()
        if alive is not None:
            try:
                alive.shutdown()
            except RuntimeError:   # the C++ side is already gone: nothing left to stop
                pass

    atexit.register(stop)
