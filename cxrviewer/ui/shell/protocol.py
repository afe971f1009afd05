"""`Shell`: the little a feature may ask of the window — messages, docks, menu actions by menu id, parent,
opening files.

Features (ui/features/, the AI controller) get a Shell and the state models, never the
MainWindow, so they cannot reach through it into other features' widgets. MainWindow
implements this protocol; a test can hand a feature a fake one.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMenu, QWidget

__all__ = ["Shell", "MENU_IDS"]

MENU_IDS = ("file", "view", "image", "tools", "help", "panels", "presets", "recent")


class Shell(Protocol):
    """What MainWindow offers to its features."""

    def host(self) -> QWidget:
        """The parent for dialogs and actions (the window)."""
        ...

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        """A line in the status bar (0: until replaced)."""
        ...

    def show_notice(self, message: str, problem: bool = True) -> None:
        """The banner over the image (and the status bar)."""
        ...

    def add_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 tabify_with: QDockWidget | None = None) -> QDockWidget:
        ...

    def split_docks(self, first: QDockWidget | str, second: QDockWidget | str, orientation: Qt.Orientation) -> None:
        """`first` above (or left of) `second`; a name is one of the window's docks ("study", "tags")."""
        ...

    def size_docks(self, docks: list[QDockWidget | str], sizes: list[int], orientation: Qt.Orientation) -> None:
        """Resize docks (a name: "study", "tags", or a dock's objectName)."""
        ...

    def add_menu_action(self, menu_id: str, action: QAction, before: str | None = None,
                        at_top: bool = False) -> None:
        """Add `action` to menu `menu_id` (see MENU_IDS): at the end, before the window action named
        `before` (e.g. "quit"), or at the top; its shortcut works anywhere in the window."""
        ...

    def add_menu_separator(self, menu_id: str, before: str | None = None) -> None:
        ...

    def add_menu(self, menu: QMenu, before_menu_id: str) -> None:
        """A whole menu in the menu bar, before menu `before_menu_id`."""
        ...

    def add_toolbar_action(self, action: QAction, separator: bool = True) -> None:
        ...

    def add_status_widget(self, widget: QWidget, index: int = 0) -> None:
        """A permanent widget in the status bar at `index`."""
        ...

    def add_above_view(self, widget: QWidget) -> None:
        """A banner between the notice line and the image."""
        ...

    def is_anonymised(self) -> bool:
        ...

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open files and folders as File ▸ Open does (the first image is shown; asynchronous)."""
        ...

    def show_index(self, index: int, frame: int = 0) -> None:
        """Show image `index` of the open study (an intent: the load is asynchronous)."""
        ...
