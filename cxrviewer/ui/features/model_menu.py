"""The Model menu: registered models (one checked), Show Heat Map (O), Retry; the remembered choice."""
from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from cxrviewer.core.model.registry import default_model_name, scan_models
from cxrviewer.ui.shell.protocol import Shell

MODEL_SETTING = "ai/model"


class _NameOnly:
    """Enough of a ModelCard for `default_model_name` (which only reads `.name`)."""

    def __init__(self, name: str) -> None:
        self.name = name


class ModelMenu(QObject):
    """Menu bar ▸ Model, the heat-map toggle on the toolbar, and the models folder's registry."""

    model_chosen = Signal(str)

    def __init__(self, shell: Shell, qsettings: QSettings, heatmap_shown: bool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._qsettings = qsettings
        self._registered: list[str] = []
        host = shell.host()
        self.toggle_action = QAction("Show &Heat Map", host)
        self.toggle_action.setObjectName("action_heatmap")
        self.toggle_action.setCheckable(True)
        self.toggle_action.setChecked(heatmap_shown)
        self.toggle_action.setShortcut(QKeySequence("O"))
        self.toggle_action.setIconText("Heat map")
        self.toggle_action.setToolTip("Show or hide the AI heat map (O)")
        host.addAction(self.toggle_action)
        self.retry_action = QAction("&Retry Loading Model", host)
        self.retry_action.setObjectName("action_retry_model")
        self.menu = QMenu("&Model", host)
        self.menu.setObjectName("modelMenu")
        shell.add_menu(self.menu, before_menu_id="help")
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        shell.add_toolbar_action(self.toggle_action)

    def registered(self) -> list[str]:
        return list(self._registered)

    def scan(self, current: str | None) -> list[str]:
        """Scan the models folder again; returns the registered names."""
        self._registered = [entry.name for entry in scan_models().models]
        self.rebuild(current)
        return self.registered()

    def initial_model(self) -> str:
        """The model to start with: the one used last time if still registered, else the default."""
        remembered = self._qsettings.value(MODEL_SETTING, "")
        if remembered and str(remembered) in self._registered:
            return str(remembered)
        return default_model_name([_NameOnly(name) for name in self._registered]) or ""

    def remember(self, name: str) -> None:
        self._qsettings.setValue(MODEL_SETTING, name)

    def rebuild(self, current: str | None) -> None:
        menu = self.menu
        menu.clear()
        for action in self._group.actions():
            self._group.removeAction(action)
        for name in self._registered:
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.setData(name)
            action.triggered.connect(lambda _=False, n=name: self.model_chosen.emit(n))
            self._group.addAction(action)
        if not self._registered:
            menu.addAction("No models found").setEnabled(False)
        menu.addSeparator()
        menu.addAction(self.toggle_action)
        menu.addAction(self.retry_action)
