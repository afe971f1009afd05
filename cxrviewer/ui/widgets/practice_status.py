"""The practice packet's status-bar widget: "Packet 7/30 · 12:31 left", Pause/Resume, Next case, Stop."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from cxrviewer.ui.widgets import make


class PracticeStatus(QWidget):
    """Progress and time in the status bar, with Pause/Resume, Next case and Stop."""

    pause_toggled = Signal(bool)
    next_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practiceStatus")
        self.label = make.label(self, "practiceProgress")
        self.pause_button = make.button(self, "Pause", "practicePause", clicked=self._on_pause_button_toggled,
                                        checkable=True)
        self.next_button = make.button(self, "Next case ▶", "practiceNext", "Record your call first (Ctrl+Return)",
                                       self.next_requested)
        self.stop_button = make.button(self, "Stop", "practiceStop", "End the packet now and score the cases read",
                                       self.stop_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(4)
        layout.addWidget(self.label)
        for button in (self.pause_button, self.next_button, self.stop_button):
            button.setFlat(False)
            button.setMaximumHeight(22)
            layout.addWidget(button)

    def text(self) -> str:
        return self.label.text()

    def set_paused(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.blockSignals(False)

    def _on_pause_button_toggled(self, checked: bool) -> None:
        self.pause_button.setText("Resume" if checked else "Pause")
        self.pause_toggled.emit(checked)
