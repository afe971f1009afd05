"""`ReadFirstSession`: the Qt glue of one window's read — the flow's events as Qt signals, the point picker.

The rules are in `state.read_first.ReadFirstFlow` (the panel's flow); this adapter feeds it
the image shown, the model, its results and the overlay's scale, turns its events into Qt
signals (`ai_visibility_changed`, `read_saved`, `problem`) and drives the canvas point picker.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.state.read_first import ReadFirstFlow
from cxrviewer.teaching.reads import ReadStore, RevealComparison
from cxrviewer.ui.docks.read_first_panel import ReadFirstPanel
from cxrviewer.ui.viewer.point_picker import PointPicker

NO_IMAGE_TEXT = "Open an image to start a read."


class ReadFirstSession(QObject):
    """Hide the AI until the call is recorded, take the call and point, reveal, compare, save (once per viewing)."""

    ai_visibility_changed = Signal(bool)    # True: the AI result and overlay may be shown
    read_saved = Signal(object)             # ReadRecord
    problem = Signal(str)                   # the reads store failed (the read is not lost silently)

    def __init__(self, panel: ReadFirstPanel, store: ReadStore | Callable[[], ReadStore] | None = None,
                 picker: PointPicker | None = None, enabled: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.picker = picker
        self.flow: ReadFirstFlow = panel.flow
        self.flow.set_sink(store)
        self.flow.set_enabled(enabled)
        self.flow.ai_visibility_changed.connect(self.ai_visibility_changed.emit)
        self.flow.read_saved.connect(self.read_saved.emit)
        self.flow.problem.connect(self.problem.emit)
        panel.reveal_requested.connect(self._stop_picking)
        panel.point_requested.connect(self._on_panel_point_requested)
        panel.clear_point_button.clicked.connect(self._on_panel_point_cleared)
        if picker is not None:
            picker.point_picked.connect(self._on_picker_point_picked)
        panel.setEnabled(False)     # nothing to read until an image is shown
        panel.reset(NO_IMAGE_TEXT)

    # ------------------------------------------------------------------ reading
    @property
    def last_comparison(self) -> RevealComparison | None:
        return self.flow.last_comparison

    def is_enabled(self) -> bool:
        return self.flow.is_enabled()

    def ai_visible(self) -> bool:
        return self.flow.ai_visible()

    def current_prediction(self) -> Prediction | None:
        """The model's prediction for the image being read (known even before the reveal)."""
        return self.flow.current_prediction()

    def export_state(self) -> str | None:
        """For an export's sidecar: None (read-first off), "before reveal" or "revealed"."""
        return self.flow.export_state()

    def store(self) -> ReadStore:
        """The reads store (opened on first use)."""
        return self.flow.sink()  # type: ignore[return-value]

    def store_path(self) -> Path | None:
        sink = self.flow.sink_if_open()
        return getattr(sink, "path", None)

    # ------------------------------------------------------------------ inputs
    def set_enabled(self, enabled: bool) -> None:
        """Read-first mode on/off. Off: the AI shows at once and nothing is recorded."""
        if not enabled:
            self._stop_picking()
        self.flow.set_enabled(enabled)
        self.panel.setEnabled(bool(enabled) and self.flow.image is not None)

    def set_image(self, image: XrayImage | None) -> None:
        """A new image is shown (or the same one again): a new read starts, the AI is hidden again."""
        self._stop_picking()
        if self.picker is not None:
            self.picker.clear_marker()
        self.flow.set_image(image)
        self.panel.set_message("" if image is not None else NO_IMAGE_TEXT)
        self.panel.setEnabled(self.flow.is_enabled() and image is not None)

    def set_model(self, model_name: str, labels: tuple[str, ...] | list[str], operating_threshold: float) -> None:
        self.flow.set_model(model_name, labels, operating_threshold)

    def set_prediction(self, prediction: Prediction) -> None:
        self.flow.set_prediction(prediction)

    def set_cam(self, cam: CamResult | None) -> None:
        self.flow.set_cam(cam)

    def set_hot_threshold(self, threshold: float, normalisation: str = "per_image",
                          absolute_max: float | None = None) -> None:
        """The overlay's scale for reading the map at the marked point. The display threshold does not
        decide "hot" (at 20 % almost any click was inside): `teaching.reads.HOT_REGION_RULE` does."""
        self.flow.set_hot_scale(normalisation, absolute_max)

    # ------------------------------------------------------------------ slots
    def _on_panel_point_requested(self, active: bool) -> None:
        if self.picker is not None:
            self.picker.set_active(active and self.flow.is_enabled())

    def _on_panel_point_cleared(self) -> None:
        if self.picker is not None:
            self.picker.clear_marker()

    def _on_picker_point_picked(self, x: float, y: float) -> None:
        self.panel.set_marked_point(x, y)
        if self.picker is not None:
            self.picker.set_active(False)

    def _stop_picking(self) -> None:
        if self.picker is not None and self.picker.is_active():
            self.picker.set_active(False)
