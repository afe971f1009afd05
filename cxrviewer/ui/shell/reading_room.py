"""Reading-room ergonomics for a MainWindow: the theme, full-screen reading, hiding the panels.

View › Theme › Dark / Light (remembered); View › Full Screen (F11); View › Hide Panels (Tab
while the image has keyboard focus — elsewhere Tab keeps moving the focus); Esc leaves full
screen and brings the panels back. Reading mode is full screen with the panels hidden: the
radiograph and its corner text only.

This is the one part of the shell that is handed the QMainWindow itself: full screen, the
menu and status bars, and saving/restoring the docks' and toolbars' state are the window's
own. The image canvas (Tab hides the panels while it has focus; reading mode focuses it) is
handed in explicitly.
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QObject, QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMenu, QToolBar, QWidget

from cxrviewer.ui.shell.theme import DARK, LIGHT, THEME_SETTING, apply_theme, current_theme, theme_named


class ReadingRoom(QObject):
    """Adds the theme and reading-mode actions to `window`'s View menu and carries them out."""

    def __init__(self, window: QMainWindow, canvas: QWidget, view_menu: QMenu, settings: QSettings) -> None:
        super().__init__(window)
        self.setObjectName("readingRoom")
        self.window, self.canvas = window, canvas
        self._settings = settings
        self._saved_state: QByteArray | None = None

        theme_menu = view_menu.addMenu("&Theme")
        theme_menu.setObjectName("themeMenu")
        self._theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name, label in ((DARK, "&Dark (reading room)"), (LIGHT, "&Light")):
            action = QAction(label, window, checkable=True)
            action.setObjectName(f"action_theme_{name}")
            action.setData(name)
            action.triggered.connect(lambda _checked=False, n=name: self.set_theme(n))
            self._theme_group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[name] = action
        self.theme_actions[current_theme().name].setChecked(True)

        self.full_screen_action = QAction("&Full Screen", window, checkable=True)
        self.full_screen_action.setObjectName("action_full_screen")
        self.full_screen_action.setShortcut(QKeySequence(Qt.Key.Key_F11))
        self.full_screen_action.toggled.connect(self.set_full_screen)
        self.hide_panels_action = QAction("&Hide Panels", window, checkable=True)
        self.hide_panels_action.setObjectName("action_hide_panels")
        self.hide_panels_action.setToolTip("Hide every panel: the image and its corner text only (Tab on the image)")
        self.hide_panels_action.toggled.connect(self.set_panels_hidden)
        self.reading_mode_action = QAction("&Reading Mode", window)
        self.reading_mode_action.setObjectName("action_reading_mode")
        self.reading_mode_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.reading_mode_action.triggered.connect(self.enter_reading_mode)
        view_menu.addSeparator()
        for action in (self.full_screen_action, self.hide_panels_action, self.reading_mode_action):
            view_menu.addAction(action)
            window.addAction(action)   # shortcuts work while the menu bar is hidden

        tab = QShortcut(QKeySequence(Qt.Key.Key_Tab), canvas)
        tab.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        tab.activated.connect(self.hide_panels_action.toggle)
        self._escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), window)
        self._escape.setContext(Qt.ShortcutContext.WindowShortcut)
        self._escape.setEnabled(False)
        self._escape.activated.connect(self.leave_reading_mode)

    # -- theme ---------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        theme = theme_named(name)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, theme)
        self._settings.setValue(THEME_SETTING, theme.name)
        self.theme_actions[theme.name].setChecked(True)

    # -- reading mode ----------------------------------------------------------------------
    def set_full_screen(self, on: bool) -> None:
        if on and not self.window.isFullScreen():
            self.window.showFullScreen()
        elif not on and self.window.isFullScreen():
            self.window.showNormal()
        self._escape.setEnabled(on or self.hide_panels_action.isChecked())

    def set_panels_hidden(self, hidden: bool) -> None:
        window = self.window
        chrome = [w for w in window.findChildren(QDockWidget) + window.findChildren(QToolBar)
                  if w.parent() is window]
        if hidden:
            self._saved_state = window.saveState()
            for widget in chrome:
                widget.hide()
            window.menuBar().hide()
            window.statusBar().hide()
        else:
            window.menuBar().show()
            window.statusBar().show()
            if self._saved_state is not None:
                window.restoreState(self._saved_state)
            else:
                for widget in chrome:
                    widget.show()
        self._escape.setEnabled(hidden or self.full_screen_action.isChecked())

    def enter_reading_mode(self) -> None:
        self.full_screen_action.setChecked(True)
        self.hide_panels_action.setChecked(True)
        self.canvas.setFocus()

    def leave_reading_mode(self) -> None:
        self.hide_panels_action.setChecked(False)
        self.full_screen_action.setChecked(False)

    def in_reading_mode(self) -> bool:
        return self.full_screen_action.isChecked() and self.hide_panels_action.isChecked()
