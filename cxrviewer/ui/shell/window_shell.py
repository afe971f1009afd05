"""MainWindow's side of the `ui.shell.Shell` protocol: what features may ask of the window, and nothing more."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QToolBar, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from cxrviewer.ui.docks.notices import NoticeBanner, ProblemsDock
    from cxrviewer.ui.docks.study_browser import StudyBrowserDock
    from cxrviewer.ui.docks.tag_dock import TagDock
    from cxrviewer.ui.shell.actions import ActionRegistry
    from cxrviewer.ui.viewer.canvas import ImageCanvas


class WindowShell:
    """Mixed into MainWindow (a QMainWindow): status line, notices, docks by name, menus by id."""

    registry: ActionRegistry
    notice: NoticeBanner
    canvas: ImageCanvas
    study_dock: StudyBrowserDock
    tag_dock: TagDock
    problems_dock: ProblemsDock
    _toolbar: QToolBar
    _central_layout: QVBoxLayout

    def _window(self) -> QMainWindow:
        assert isinstance(self, QMainWindow)
        return self

    def host(self) -> QWidget:
        return self._window()

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        self._window().statusBar().showMessage(message, timeout_ms)

    def show_notice(self, message: str, problem: bool = True) -> None:
        self.notice.show_notice(message, problem=problem)
        self._window().statusBar().showMessage(message, 10000)

    def add_dock(self, dock: QDockWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 tabify_with: QDockWidget | None = None) -> QDockWidget:
        """Add a dock (e.g. the AI panel) with a View-menu toggle; returns `dock`."""
        if not dock.objectName():
            dock.setObjectName(type(dock).__name__)
        self._window().addDockWidget(area, dock)
        if tabify_with is not None:
            self._window().tabifyDockWidget(tabify_with, dock)
        self.registry.menu("panels").addAction(dock.toggleViewAction())
        return dock

    def split_docks(self, first: QDockWidget | str, second: QDockWidget | str, orientation: Qt.Orientation) -> None:
        self._window().splitDockWidget(self._dock(first), self._dock(second), orientation)

    def size_docks(self, docks: list[QDockWidget | str], sizes: list[int], orientation: Qt.Orientation) -> None:
        self._window().resizeDocks([self._dock(d) for d in docks], sizes, orientation)

    def add_menu_action(self, menu_id: str, action: QAction, before: str | None = None,
                        at_top: bool = False) -> None:
        self.registry.add_to_menu(menu_id, action, before, at_top)

    def add_menu_separator(self, menu_id: str, before: str | None = None) -> None:
        self.registry.add_separator(menu_id, before)

    def add_menu(self, menu: QMenu, before_menu_id: str) -> None:
        self._window().menuBar().insertMenu(self.registry.menu(before_menu_id).menuAction(), menu)

    def add_toolbar_action(self, action: QAction, separator: bool = True) -> None:
        if separator:
            self._toolbar.addSeparator()
        self._toolbar.addAction(action)

    def add_status_widget(self, widget: QWidget, index: int = 0) -> None:
        self._window().statusBar().insertPermanentWidget(index, widget)

    def add_above_view(self, widget: QWidget) -> None:
        self._central_layout.insertWidget(self._central_layout.indexOf(self.canvas), widget)

    def is_anonymised(self) -> bool:
        return self.registry.action("anonymise").isChecked()

    def _dock(self, dock: QDockWidget | str) -> QDockWidget:
        if isinstance(dock, QDockWidget):
            return dock
        named = {"study": self.study_dock, "tags": self.tag_dock, "problems": self.problems_dock}
        found = named.get(dock) or self._window().findChild(QDockWidget, dock)
        if found is None:
            raise KeyError(f"no dock named {dock!r}")
        return found
