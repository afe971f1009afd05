"""Renders `state.ai.HeatmapState` into the AI panel (caption, gate line), the overlay item and the legend.

Wording lives here, the decision in `AiSession.heatmap()`: the view never decides whether
a map may be shown, it only says why it is not.
"""
from __future__ import annotations

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.types import CamResult, Prediction
from cxrviewer.core.xai.cam import METHOD_LABELS
from cxrviewer.state.ai import HeatmapState, Held
from cxrviewer.state.overlay import OverlaySettings
from cxrviewer.ui.docks.ai_panel import AiPanel, MapLegend
from cxrviewer.ui.viewer.overlay_item import CamOverlayItem

READ_FIRST_CAPTION = "Read first — AI hidden"


def class_label(model: ModelInfo | None, cam: CamResult) -> str:
    return model.labels[cam.class_index] if model is not None else str(cam.class_index)


def caption(cam: CamResult, prediction: Prediction | None, model: ModelInfo | None) -> str:
    """ "Heat map for VIRAL — p = 0.73" and the method and layer below."""
    label = class_label(model, cam)
    details = f"{METHOD_LABELS.get(cam.method, cam.method)}, layer {cam.layer}"
    if prediction is None:
        return f"Heat map for {label}\n{details}"
    return f"Heat map for {label} — p = {prediction.probability(label):.2f}\n{details}"


class HeatmapView:
    """The overlay's visibility, the caption and gate line, and the on-image legend, from one snapshot."""

    def __init__(self, panel: AiPanel, overlay: CamOverlayItem, legend: MapLegend, settings: OverlaySettings) -> None:
        self.panel, self.overlay, self.legend, self.settings = panel, overlay, legend, settings

    def render(self, state: HeatmapState, model: ModelInfo | None) -> None:
        cam = state.cam if self.overlay.has_overlay() else None
        visible = cam is not None and state.allowed and self.settings.visible
        self.overlay.setVisible(visible)
        panel = self.panel
        prediction = state.prediction
        if cam is None:
            panel.set_caption("")
            panel.set_gate("")
        elif state.held is Held.READ_FIRST:
            panel.set_caption(READ_FIRST_CAPTION)
            panel.set_gate("")
        elif state.held is Held.OUTSIDE_DATA and prediction is not None and prediction.ood is not None:
            panel.set_caption("")
            panel.set_gate(prediction.ood.message(prediction.model_name), offer_show=True)
        else:
            panel.set_caption(caption(cam, self._prediction_for(cam, state), model))
            gate = state.gate
            if state.outside_shown_anyway and prediction is not None and prediction.ood is not None:
                panel.set_gate(f"{prediction.ood.shown_anyway_message(prediction.model_name)}.")
            elif state.held is Held.NOT_THE_CALL and gate is not None:
                panel.set_gate(gate.message, offer_show=True)
            elif state.below_threshold and gate is not None:
                panel.set_gate(gate.shown_anyway_message)
            else:
                panel.set_gate("")
        self.render_legend(state if visible else None, model)

    def render_legend(self, state: HeatmapState | None, model: ModelInfo | None) -> None:
        cam = state.cam if state is not None else None
        if state is None or cam is None:
            self.legend.hide()
            return
        prediction = self._prediction_for(cam, state)
        label = class_label(model, cam)
        number = f"  p = {prediction.probability(label):.2f}" if prediction is not None else ""
        gate = state.gate
        note = f"  (not the call: {gate.call})" if state.shown_anyway and gate is not None else ""
        if prediction is not None and prediction.outside_training_data:
            note += "  (outside training data)"
        s = self.settings.snapshot()
        self.legend.set_scale(s.colormap, s.threshold, s.scale_max)
        self.legend.set_content(f"Heat map: {label}{number}{note}")
        self.legend.show()

    @staticmethod
    def _prediction_for(cam: CamResult, state: HeatmapState) -> Prediction | None:
        p = state.prediction
        return p if p is not None and p.image_key == cam.image_key and p.model_name == cam.model_name else None
