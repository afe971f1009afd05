"""Tools ▸ Read First (on by default) and F2: the "Read first" dock, the canvas point picker, the AI kept hidden.

Until the call is recorded the AI session keeps probabilities and heat map off screen while
the results still arrive; they are fed to the read-first flow, which compares and saves the
read as soon as it is complete (image hash only, `teaching.reads`).
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, Qt

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.types import CamResult, Prediction
from cxrviewer.state.ai import AiSession
from cxrviewer.state.overlay import Cost, OverlayChange
from cxrviewer.ui.docks.read_first_panel import (
    ReadFirstPanel,
    make_read_first_action,
    make_read_first_dock,
    read_first_enabled,
)
from cxrviewer.ui.features.read_first_session import ReadFirstSession
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.point_picker import PointPicker


class ReadFirstFeature(QObject):
    """The read-first panel, dock, actions and point picker, fed from the AI session."""

    def __init__(self, shell: Shell, canvas: ImageCanvas, qsettings: QSettings, ai: AiSession,
                 hide_results: Callable[[bool], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.ai, self._hide_results = shell, ai, hide_results
        self.panel = ReadFirstPanel()
        self.flow = self.panel.flow
        self.picker = PointPicker(canvas, self)
        self.session = ReadFirstSession(self.panel, picker=self.picker, enabled=read_first_enabled(qsettings),
                                        parent=self)
        self.call_recorded = self.panel.call_recorded   # ReadCall: the trainee's call, as recorded
        self.dock = make_read_first_dock(self.panel, shell.host())
        shell.add_dock(self.dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        shell.split_docks("study", self.dock, Qt.Orientation.Vertical)
        self.action = make_read_first_action(shell.host(), qsettings)
        self.focus_action = make_action(
            shell.host(), "focus_read", "Make Your &Call (Keyboard)", self.focus,
            "Focus the Read First panel: a letter calls, 0-9 sets the confidence, Enter records and reveals", "F2")
        self.action.toggled.connect(self.session.set_enabled)
        self.session.ai_visibility_changed.connect(self._on_ai_visibility_changed)
        self.session.problem.connect(lambda message: shell.show_notice(message))
        ai.prediction_arrived.connect(self._on_ai_prediction_arrived)
        ai.cam_arrived.connect(self._on_ai_cam_arrived)
        ai.overlay.changed.connect(self._on_overlay_changed)
        hide_results(not self.session.ai_visible())
        self._sync_hot_scale()

    def focus(self) -> None:
        if not self.dock.isVisible():
            self.dock.show()
        self.dock.raise_()
        self.panel.focus_call()

    def conceal_comparison(self) -> None:
        """Hide the panel's comparison with the AI result (a practice packet that reveals at the end)."""
        self.panel.result_frame.hide()

    def tell_model(self, model: ModelInfo | None = None) -> None:
        """The call choices are the model's classes; its card threshold decides its call (`core.model_call`)."""
        model = model or self.ai.model
        if model is not None and model.card is not None:
            self.session.set_model(model.name, model.labels, model.card.operating_threshold)

    def _on_ai_prediction_arrived(self, prediction: Prediction) -> None:
        self.tell_model()
        self.session.set_prediction(prediction)

    def _on_ai_cam_arrived(self, cam: CamResult) -> None:
        self.session.set_cam(cam)

    def _on_overlay_changed(self, change: OverlayChange) -> None:
        if change.cost is Cost.RESCALE or change.field == "threshold":
            self._sync_hot_scale()

    def _sync_hot_scale(self) -> None:
        s = self.ai.overlay.snapshot()
        self.session.set_hot_threshold(s.threshold, s.normalisation, s.scale_max)

    def _on_ai_visibility_changed(self, visible: bool) -> None:
        self._hide_results(not visible)
