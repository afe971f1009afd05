"""The compare side's own AI second reader: its own call, heat map and gates (#16).

The rules are the main view's, not a copy of them: the pane runs a second `AiSession`
(state/ai.py: newest wins, stale results dropped, "Model's call" resolved through
core.model_call, the out-of-distribution and not-the-call gates) on the window's own
`OverlaySettings` (same class/method/layer, colour map, opacity, threshold, style), and
renders it with the main view's `HeatmapView`. Its requests go to the shared inference
worker in the "compare" lane, so they never supersede the main view's (and vice versa).

Read First: while the main image's AI result is hidden (the trainee has not recorded a
call), the compare side's is hidden too; it appears when the main one does.

"Show anyway" beside the pane's AI line is offered where the main panel offers it (the
`HeatmapView` rendering of the compare session's `heatmap()`: an image outside the training
data, a map of a class the model does not call) and lets it through in the compare session.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, SignalInstance
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QSizePolicy, QWidget

from cxrviewer.core.inference.protocol import COMPARE_LANE, ModelInfo
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.core.xai.overlay import cam_index_image
from cxrviewer.core.xai.overlay_style import overlay_shape
from cxrviewer.state.ai import AiSession, HeatmapState
from cxrviewer.state.overlay import OverlayChange
from cxrviewer.ui.docks.ai_panel import MapLegend
from cxrviewer.ui.features.heatmap_view import READ_FIRST_CAPTION, HeatmapView
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.overlay_item import CamOverlayItem
from cxrviewer.ui.widgets import make
from cxrviewer.ui.workers.inference_service import InferenceService

OVERLAY_Z = 10.0
READ_FIRST_TEXT = f"{READ_FIRST_CAPTION}: record your call for the main image first"


class LaneEngine:
    """The inference service as `state.ai.InferenceEngine`, bound to one lane."""

    def __init__(self, service: InferenceService, lane: str) -> None:
        self.service, self.lane = service, lane

    def request(self, image: XrayImage, class_index: int | None = None, method: str | None = "gradcam",
                layer: str | None = None) -> int:
        return self.service.request(image, class_index, method, layer, lane=self.lane)

    def cancel(self) -> None:
        self.service.cancel(self.lane)


class _CaptionSink:
    """What `HeatmapView` writes into the AI panel (caption, gate line, "Show anyway"), kept for the pane."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.caption = ""
        self.gate = ""
        self.offer_show = False
        self._changed = changed

    def set_caption(self, text: str) -> None:
        self.caption = text
        self._changed()

    def set_gate(self, text: str, offer_show: bool = False) -> None:
        self.gate, self.offer_show = text, bool(text) and offer_show
        self._changed()


@dataclass(frozen=True)
class CompareAiModels:
    """What the compare side's AI is handed by the window: the service, the main view's session and its own."""

    service: InferenceService
    main: AiSession      # the main view's: its model, read-first state and absolute scales
    session: AiSession   # the compare side's, on `LaneEngine(service, COMPARE_LANE)` and the main overlay settings


def compare_session(service: InferenceService, main: AiSession) -> AiSession:
    """The compare side's AiSession: the shared worker's "compare" lane, the main view's overlay settings."""
    return AiSession(LaneEngine(service, COMPARE_LANE), main.overlay)


class CompareAi(QObject):
    """Drives the compare pane's AiSession from the service, the compare image and Read First.

    Handed the compare canvas, the pane's layout (its AI line goes at `line_index`), the signal that
    announces the compare image (XrayImage | None) and the models."""

    def __init__(self, parent: QObject, canvas: ImageCanvas, pane_layout: QBoxLayout, line_index: int,
                 image_changed: SignalInstance, models: CompareAiModels) -> None:
        super().__init__(parent)
        self.setObjectName("compareAi")
        self.main = models.main
        self.canvas = canvas
        self.service = models.service
        self.session = models.session
        self.settings = models.session.overlay
        self.overlay = CamOverlayItem()
        self.canvas.add_overlay_item(self.overlay, OVERLAY_Z)
        self._style_overlay()
        self.legend = MapLegend(self.canvas)
        self._sink = _CaptionSink(self._update_label)
        self.view = HeatmapView(self._sink, self.overlay, self.legend, self.settings)
        self.line = QWidget()            # the AI line and its "Show anyway"; the pane layout adopts it
        self.line.setObjectName("compareAiLine")
        self.label = QLabel(self.line)
        self.label.setObjectName("compareAiLabel")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setStyleSheet("padding: 2px 6px;")
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.show_anyway_button = make.button(self.line, "Show anyway", "compareShowAnyway",
                                              "Show what is held back on this side anyway (an image unlike the training "
                                              "data, or a map of a class the model does not call)",
                                              self._on_show_anyway_button_clicked)
        row = QHBoxLayout(self.line)
        row.setContentsMargins(0, 0, 4, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.show_anyway_button, 0, Qt.AlignmentFlag.AlignVCenter)
        pane_layout.insertWidget(line_index, self.line)
        if self.main.model is not None:
            self.session.set_model(self.main.model)
        self.session.set_results_hidden(self.main.results_hidden())
        self._connect()
        image_changed.connect(self._on_compare_image_changed)
        self._update_label()

    def _connect(self) -> None:
        s = self.service
        s.model_ready.connect(self._on_service_model_ready)
        s.model_kept.connect(lambda _message, info: self._on_service_model_ready(info))
        s.model_failed.connect(self._on_service_model_failed)
        s.worker_lost.connect(lambda _message, restarting: None if restarting else self._on_service_model_failed(""))
        s.answered.connect(self._on_service_answered)
        s.lane_failed.connect(self._on_service_lane_failed)
        self.session.prediction_arrived.connect(lambda _p: self._update_label())
        self.session.cam_arrived.connect(self._on_session_cam_arrived)
        self.session.cam_cleared.connect(lambda _none: self.overlay.clear())
        self.session.heatmap_changed.connect(self._on_session_heatmap_changed)
        self.session.request_failed.connect(lambda _message: self._update_label())
        self.main.heatmap_changed.connect(self._on_main_heatmap_changed)   # read first on the main side
        self.settings.changed.connect(self._on_overlay_settings_changed)

    # ----------------------------------------------------------------------- reading
    def text(self) -> str:
        """The pane's AI line; what it is about (prediction, gates, read first) is in `self.session`."""
        return self.label.text()

    # ----------------------------------------------------------------------- drawing
    def _style_overlay(self) -> None:
        s = self.settings.snapshot()
        self.overlay.set_colormap(s.colormap)
        self.overlay.set_threshold(s.threshold)
        self.overlay.set_style(s.style)
        self.overlay.setOpacity(s.opacity)

    def _draw_cam(self, cam: CamResult, image: XrayImage) -> None:
        """The main view's drawing: the same normalisation; the absolute scale of the main side's model/method/layer."""
        scale = self.main.absolute_max_for(cam) if self.settings.normalisation == "absolute" else None
        index = cam_index_image(cam.cam, overlay_shape(image.shape), self.settings.normalisation, scale)
        self.overlay.set_index_image(index, image.shape, cam.image_key)
        self.overlay.setOpacity(self.settings.opacity)

    def _redraw(self) -> None:
        cam, image = self.session.shown_cam(), self.canvas.image()
        if cam is not None and image is not None and cam.image_key == self.session.current_key():
            self._draw_cam(cam, image)
        self.view.render(self.session.heatmap(), self.session.model)

    def _update_label(self) -> None:
        """One line, the model's call (core.model_call's headline), and the gate line when a gate speaks."""
        session = self.session
        prediction = session.current_prediction()
        call = session.shown_call()        # None while read first hides it or the image is held back (OOD)
        if self.canvas.image() is None or session.model is None:
            lines = []
        elif call is not None:
            lines = [f"Model's call: {call.headline}"]
            if self._sink.gate:            # the map's caption is in the legend on the image; a gate is not
                lines.append(self._sink.gate)
        elif session.results_hidden():
            lines = [READ_FIRST_TEXT]
        elif prediction is None:
            lines = ["AI: analysing…" if session.pending() else ""]
        elif session.outside_held() and prediction.ood is not None:
            lines = [f"No call and no heat map: {prediction.ood.message(prediction.model_name)}"]
        else:
            lines = [f"Top class: {prediction.top_label}"]      # a model without a card has no call
        text = "\n".join(line for line in lines if line)
        self.label.setText(text)
        self.label.setVisible(bool(text))
        offer = bool(text) and self._sink.offer_show
        self.show_anyway_button.setVisible(offer)
        self.line.setVisible(bool(text) or offer)

    # ----------------------------------------------------------------------- slots
    def _on_show_anyway_button_clicked(self) -> None:
        self.session.show_anyway()     # the session re-renders through heatmap_changed

    def _on_compare_image_changed(self, image: XrayImage | None) -> None:
        self.overlay.clear()
        self.session.set_image(image)
        self.view.render(self.session.heatmap(), self.session.model)
        self._update_label()

    def _on_main_heatmap_changed(self, _state: HeatmapState) -> None:
        self.session.set_results_hidden(self.main.results_hidden())
        self._update_label()

    def _on_service_model_ready(self, info: ModelInfo) -> None:
        if not self.session.is_same_model(info):
            self.session.set_model(info)
        else:
            self.session.model = info
        if self.canvas.image() is not None:
            self.session.refresh()
        self._update_label()

    def _on_service_model_failed(self, _message: str) -> None:
        self.session.clear_model()
        self.overlay.clear()
        self._update_label()

    def _on_service_answered(self, lane: str, prediction: Prediction, cam: CamResult | None) -> None:
        if lane != COMPARE_LANE:
            return
        self.session.accept_prediction(prediction)
        if cam is not None:
            self.session.accept_cam(cam)

    def _on_service_lane_failed(self, lane: str, request_id: int, message: str) -> None:
        if lane == COMPARE_LANE:
            self.session.fail_request(request_id, message)

    def _on_session_cam_arrived(self, cam: CamResult) -> None:
        image = self.canvas.image()
        if image is not None:
            self._draw_cam(cam, image)

    def _on_session_heatmap_changed(self, state: HeatmapState) -> None:
        self.view.render(state, self.session.model)
        self._update_label()

    def _on_overlay_settings_changed(self, change: OverlayChange) -> None:
        name, value = change.field, change.value
        if name == "opacity":
            self.overlay.setOpacity(value)
        elif name in ("colormap", "threshold", "style"):
            getattr(self.overlay, f"set_{name}")(value)
            if name != "style":
                self.view.render_legend(self.session.heatmap() if self.overlay.isVisible() else None,
                                        self.session.model)
        elif name in ("normalisation", "absolute_max"):
            self._redraw()
