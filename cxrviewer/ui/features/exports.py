"""File ▸ Export View (PNG + sidecar JSON), Copy View, Case Report (PDF).

The AI result, the map and the training-data warnings go into an export only once revealed
(read first); file names carry the image's content hash, never a file or patient name.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from cxrviewer.core.errors import CxrError
from cxrviewer.state.ai import AiSession
from cxrviewer.state.read_first import ReadFirstFlow
from cxrviewer.state.session import ViewerSession
from cxrviewer.teaching.export_view import OverlayState
from cxrviewer.ui.features.export_actions import (
    ExportResult,
    ask_export_path,
    canvas_sidecar,
    copy_view_to_clipboard,
    export_pdf,
    export_view_png,
    shown_audit,
)
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.shell.settings import ViewerSettings
from cxrviewer.ui.viewer.canvas import ImageCanvas


class ExportsFeature(QObject):
    """The three export actions (enabled while an image is shown) and the sidecar record behind them."""

    def __init__(self, shell: Shell, canvas: ImageCanvas, settings: ViewerSettings, viewer: ViewerSession,
                 ai: AiSession, flow: ReadFirstFlow, overlay_visible: Callable[[], bool],
                 warnings: Callable[[], list[str]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.canvas, self.settings, self.viewer = shell, canvas, settings, viewer
        self.ai, self.flow, self._overlay_visible, self._warnings = ai, flow, overlay_visible, warnings
        self.export_view_action = self._action("export_view", "&Export View…", self.export_view, "Ctrl+E",
                                               "Save the view as shown (PNG) with a JSON record of how it was made")
        self.copy_view_action = self._action("copy_view", "&Copy View", self.copy_view, "Ctrl+Shift+C",
                                             "Copy the view as shown to the clipboard")
        self.case_report_action = self._action(
            "case_report", "Case &Report (PDF)…", self.export_case_report, "",
            "A one-page PDF: the view, the AI result, your call and the comparison")
        self.update_enabled()

    def actions(self) -> tuple[QAction, ...]:
        return (self.export_view_action, self.copy_view_action, self.case_report_action)

    def update_enabled(self) -> None:
        for action in self.actions():
            action.setEnabled(self.viewer.image is not None)

    def sidecar(self) -> dict[str, Any]:
        """The export record of the view now; the AI result only once revealed."""
        model = self.ai.model
        revealed = self.flow.ai_visible()
        return canvas_sidecar(
            self.canvas,
            anonymise=self.shell.is_anonymised(),
            card=model.card if model is not None else None,
            prediction=self.ai.current_prediction() if revealed else None,
            overlay=self.overlay_state() if revealed else None,
            read_first_state=self.flow.export_state(),
            warnings=self._warnings() if revealed else None,
        )

    def export_view(self, path: str | Path | None = None) -> ExportResult | None:
        """PNG + sidecar JSON (asks for a path when none is given)."""
        if path is None or path is False:   # False: from a triggered(bool) signal
            path = ask_export_path(self.shell.host(), "png", self._folder(), self._name())
            if path is None:
                return None
        try:
            result = export_view_png(self.canvas, path, self.sidecar(), anonymise=self.shell.is_anonymised())
        except CxrError as exc:
            self.shell.show_notice(f"Export failed: {exc}")
            return None
        self.settings.set_export_folder(Path(result.png).parent)
        self.shell.show_status(f"Exported {result.png.name} and {result.sidecar.name}", 10000)
        return result

    def copy_view(self) -> bool:
        try:
            copy_view_to_clipboard(self.canvas, self.sidecar(), anonymise=self.shell.is_anonymised())
        except CxrError as exc:
            self.shell.show_notice(f"Copy failed: {exc}")
            return False
        self.shell.show_status("View copied to the clipboard", 5000)
        return True

    def export_case_report(self, path: str | Path | None = None) -> Path | None:
        """A one-page PDF with the view, the result, the call and the comparison."""
        if path is None or path is False:
            path = ask_export_path(self.shell.host(), "pdf", self._folder(), self._name())
            if path is None:
                return None
        try:
            written = export_pdf(self.canvas, path, self.sidecar(), anonymise=self.shell.is_anonymised(),
                                 call=self.flow.recorded, comparison=self.flow.last_comparison,
                                 warnings=self._warnings(), audit=shown_audit(self.ai))
        except CxrError as exc:
            self.shell.show_notice(f"Case report failed: {exc}")
            return None
        self.settings.set_export_folder(Path(written).parent)
        self.shell.show_status(f"Case report written: {Path(written).name}", 10000)
        return Path(written)

    def overlay_state(self) -> OverlayState | None:
        cam, model = self.ai.shown_cam(), self.ai.model
        if cam is None or model is None:
            return None
        s = self.ai.overlay.snapshot()
        return OverlayState(
            method=cam.method, layer=cam.layer, class_index=cam.class_index,
            class_label=model.labels[cam.class_index], threshold=s.threshold, opacity=s.opacity,
            colormap=s.colormap, normalisation=s.normalisation, absolute_max=s.scale_max,
            visible=self._overlay_visible(), shown_below_operating_threshold=self.ai.heatmap().shown_anyway,
        )

    def _action(self, name: str, text: str, slot: Callable[[], object], shortcut: str, tip: str) -> QAction:
        return make_action(self.shell.host(), name, text, slot, tip, shortcut)

    def _folder(self) -> str:
        folder = Path(self.settings.export_folder())
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:   # unwritable: let the dialog start where it can
            return ""
        return str(folder)

    def _name(self) -> str:
        """A file name without patient data: the image hash, never the file or patient name."""
        image = self.viewer.image
        return f"cxr-view-{image.sha256[:10]}" if image is not None and image.sha256 else "cxr-view"
