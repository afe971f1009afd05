"""Help ▸ About: version, the not-for-clinical-use notice and where the log file is."""
from __future__ import annotations

import html
import platform
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__


def about_html(log_path: Path | None) -> str:
    log_text = html.escape(str(log_path)) if log_path else "logging to file is not set up"
    return (
        f"<h2>cxrviewer {html.escape(__version__)}</h2>"
        "<p>Offline chest X-ray viewer with an AI second reader, for radiology trainees.</p>"
        f"<p><b>{html.escape(NOT_FOR_CLINICAL_USE)}.</b> Not a medical device: do not use it "
        "to diagnose or treat patients.</p>"
        f"<p>Log file:<br><code>{log_text}</code></p>"
        f"<p style='color:gray'>Python {html.escape(platform.python_version())}, "
        f"Qt for Python {html.escape(PySide6.__version__)}. Font: DejaVu Sans.</p>"
    )


class AboutDialog(QDialog):
    def __init__(self, log_path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About cxrviewer")
        self.setObjectName("aboutDialog")
        self.text = QLabel(about_html(log_path), self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setMinimumWidth(420)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
