"""Drag and drop of files from the desktop: the one rule for every drop target (window, compare pane)."""
from __future__ import annotations

from PySide6.QtGui import QDragEnterEvent, QDropEvent


def accept_local_files(event: QDragEnterEvent) -> None:
    """Accept a drag that carries at least one local file; ignore anything else (text, web links)."""
    if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
        event.acceptProposedAction()
    else:
        event.ignore()


def dropped_local_files(event: QDropEvent) -> list[str]:
    """The local files of a drop (accepted when there are any)."""
    paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
    if paths:
        event.acceptProposedAction()
    return paths
