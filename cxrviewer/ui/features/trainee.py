"""The trainee features of a window, composed: read first, model card, sanity check, My Reads, exports.

Each feature is its own module under `ui/features/` and gets the state models it needs
(`ViewerSession`, `AiSession`, the read-first flow) and the window's `Shell`; this class only
creates them, places their actions in the menus and links them (a reveal updates the
training-data banner, the AI panel's "Model card…" opens the card). Callers use the features
themselves (`trainee.exports.export_view()`, `trainee.sanity.run()`, `trainee.my_reads.open()`,
`trainee.model_card.dialog`…); the attributes set in `__init__` are what the practice packets
and the tests use.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.types import Prediction, XrayImage
from cxrviewer.state.ai import AiSession
from cxrviewer.state.session import ViewerSession
from cxrviewer.ui.features.ai import AiController
from cxrviewer.ui.features.exports import ExportsFeature
from cxrviewer.ui.features.model_card import ModelCardFeature
from cxrviewer.ui.features.my_reads import MyReadsFeature
from cxrviewer.ui.features.read_first import ReadFirstFeature
from cxrviewer.ui.features.sanity import SanityCheck, SanityCheckDialog, audit_html, sanity_summary_html
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.shell.settings import ViewerSettings
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.workers.inference_service import InferenceService

__all__ = ["TraineeController", "SanityCheckDialog", "audit_html", "sanity_summary_html"]

LEFT_COLUMN_WIDTH = 300
STUDY_BROWSER_HEIGHT = 440   # at least 10 rows of 32 px thumbnails under the dark theme


class TraineeController(QObject):
    """Read first, model card, sanity check, My Reads and exports for one window."""

    def __init__(self, shell: Shell, canvas: ImageCanvas, viewer: ViewerSession, settings: ViewerSettings,
                 session: AiSession, service: InferenceService, ai: AiController) -> None:
        super().__init__(shell.host())
        self.setObjectName("traineeController")
        self.shell, self.viewer, self.ai = shell, viewer, ai   # ai: hiding results, the map shown, "Model card…"
        self.reading = ReadFirstFeature(shell, canvas, settings.qsettings, session, ai.set_results_hidden, self)
        self.read_first, self.read_first_panel = self.reading.session, self.reading.panel
        self.read_first_dock, self.read_first_action = self.reading.dock, self.reading.action
        self.focus_read_action, self.picker = self.reading.focus_action, self.reading.picker
        flow = self.reading.flow
        self.model_card = ModelCardFeature(shell, session, viewer, flow, self)
        self.ood_banner, self.model_card_action = self.model_card.banner, self.model_card.action
        self.sanity = SanityCheck(shell, service, session, viewer, flow, self)
        self.sanity_action = self.sanity.action
        self.my_reads = MyReadsFeature(shell, viewer, self.read_first, self)
        self.my_reads_action = self.my_reads.action
        self.exports = ExportsFeature(shell, canvas, settings, viewer, session, flow, ai.overlay_visible,
                                      self.model_card.warnings, self)
        self.export_view_action = self.exports.export_view_action
        self.copy_view_action = self.exports.copy_view_action
        self.case_report_action = self.exports.case_report_action
        self._place_actions()
        viewer.image_changed.connect(self._on_viewer_image_changed)
        session.prediction_arrived.connect(self._on_ai_prediction_arrived)
        service.model_ready.connect(self._on_service_model_ready)
        ai.model_card_requested.connect(self.model_card.open)
        self.read_first.ai_visibility_changed.connect(lambda _visible: self.model_card.update())

    def _place_actions(self) -> None:
        add = self.shell.add_menu_action
        for action in self.exports.actions():
            add("file", action, before="quit")
        self.shell.add_menu_separator("file", before="quit")
        self.shell.add_menu_separator("tools")
        for action in (self.read_first_action, self.focus_read_action, self.my_reads_action, self.sanity_action):
            add("tools", action)
        add("help", self.model_card_action, at_top=True)

    def apply_default_layout(self) -> None:
        """First start: a wider left column, the study browser above the Read first panel."""
        size = self.shell.size_docks
        size(["study"], [LEFT_COLUMN_WIDTH], Qt.Orientation.Horizontal)
        height = self.shell.host().height()
        size(["study", self.read_first_dock.objectName()],
             [STUDY_BROWSER_HEIGHT, max(height - STUDY_BROWSER_HEIGHT, 300)], Qt.Orientation.Vertical)

    # ============================================================ links between the features
    def _on_viewer_image_changed(self, image: XrayImage | None) -> None:
        self.my_reads.image_shown(image)
        self.read_first.set_image(image)
        self.model_card.new_image()
        self.exports.update_enabled()

    def _on_ai_prediction_arrived(self, _prediction: Prediction) -> None:
        self.model_card.update()

    def _on_service_model_ready(self, info: ModelInfo) -> None:
        self.reading.tell_model()
        self.model_card.update()
