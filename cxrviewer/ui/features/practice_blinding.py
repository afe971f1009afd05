"""What a practice packet hides while it runs, so that nothing on screen gives a case's answer away.

A case is shown as "Practice case 3 of 12" (`ViewerSession.set_display_names`: the window title, the study
browser, the status bar, the first corner line), never by its file or folder name. A DICOM case's header could
still tell: the corner text shows no descriptive field (`ImageCanvas.set_blinded`), the DICOM tags dock shows
"Hidden during a practice packet" instead of the tags (`TagTable.set_blinded`), and an AI panel message that
names the staging folder, a case's copy or its original file shows the case's number instead
(`AiPanel.set_hidden_paths`). `lift` brings everything back when the packet ends.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtWidgets import QWidget

from cxrviewer.state.session import DisplayName, ViewerSession
from cxrviewer.teaching.practice import PacketState
from cxrviewer.ui.docks.ai_panel import AiPanel
from cxrviewer.ui.docks.tag_dock import TagDock
from cxrviewer.ui.viewer.canvas import ImageCanvas

PRACTICE_FOLDER = "the practice folder"


def case_name(number: int, n_cases: int) -> str:
    return f"Practice case {number} of {n_cases}"


def hidden_paths(state: PacketState, staged: Mapping[int, Path], staging_folder: Path) -> dict[str, str]:
    """Every path and file name of the packet that a message could show → what to show instead."""
    out: dict[str, str] = {}
    for folder in (staging_folder / state.packet_id, staging_folder):
        for spelling in {str(folder), str(folder.resolve())}:
            out[spelling] = PRACTICE_FOLDER
    for case in state.cases:
        name = case_name(case.number, state.n_cases)
        for path in {Path(case.path), staged.get(case.number, Path(case.path))}:
            out[str(path.parent)] = PRACTICE_FOLDER
            out[str(path.resolve())] = out[str(path)] = out[path.name] = name
    return out


class PracticeBlinding:
    """Applies and lifts the blinding of one window (see the module docstring)."""

    def __init__(self, host: QWidget, viewer: ViewerSession, canvas: ImageCanvas, panel: AiPanel) -> None:
        self.host, self.viewer, self.canvas, self.panel = host, viewer, canvas, panel

    def apply(self, state: PacketState, staged: Mapping[int, Path], staging_folder: Path) -> None:
        study = f"Practice packet {state.created[:16].replace('T', ' ')}"   # never the staging folder's name
        self.viewer.set_display_names({path: DisplayName(case_name(number, state.n_cases), study)
                                       for number, path in staged.items()})
        self.canvas.set_blinded(True)
        for dock in self.host.findChildren(TagDock):
            dock.tags.set_blinded(True)
        self.panel.set_hidden_paths(hidden_paths(state, staged, staging_folder))

    def lift(self) -> None:
        self.viewer.set_display_names({})
        self.canvas.set_blinded(False)
        for dock in self.host.findChildren(TagDock):
            dock.tags.set_blinded(False)
        self.panel.set_hidden_paths({})
