"""Drag and drop of files from the desktop: the one rule for every drop target (window, compare pane)."""
from __future__ import annotations

from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent


def accept_local_files(event: QDragMoveEvent) -> None:
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


class LocalFileDrops:
    """Mixin for a drop target (before its Qt class): local files dropped on it go to `local_files_dropped`."""

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_local_files(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        accept_local_files(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_local_files(event)
        if paths:
            self.local_files_dropped(paths)

    def local_files_dropped(self, paths: list[str]) -> None:
        raise NotImplementedError
