"""The window's action registry: actions by name, menus by id, and placing an action in a menu.

Features add their actions through the `Shell` (`add_menu_action(menu_id, action, before=…)`)
instead of looking menus up on the window and inserting by position.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget


class ActionRegistry:
    """Named actions (shortcuts work anywhere in `host`) and named menus."""

    def __init__(self, host: QWidget) -> None:
        self._host = host
        self._actions: dict[str, QAction] = {}
        self._menus: dict[str, QMenu] = {}

    def add(self, name: str, text: str, slot: Callable[..., object] | None = None,
            shortcuts: Sequence[QKeySequence | str | QKeySequence.StandardKey] = (), *, tip: str = "",
            checkable: bool = False, icon_text: str = "") -> QAction:
        action = QAction(text, self._host)
        action.setObjectName(f"action_{name}")
        keys = [QKeySequence(k) for k in shortcuts]
        if keys:
            action.setShortcuts(keys)
        action.setCheckable(checkable)
        if icon_text:
            action.setIconText(icon_text)
        shown = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
        action.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({shown})" if shown else ""))
        action.setStatusTip(tip or text.replace("&", ""))
        if slot is not None:
            (action.toggled if checkable else action.triggered).connect(slot)
        self._host.addAction(action)   # shortcuts work even with the toolbar hidden
        self._actions[name] = action
        return action

    def action(self, name: str) -> QAction:
        return self._actions[name]

    def names(self) -> list[str]:
        return list(self._actions)

    def register_menu(self, menu_id: str, menu: QMenu) -> QMenu:
        self._menus[menu_id] = menu
        return menu

    def menu(self, menu_id: str) -> QMenu:
        return self._menus[menu_id]

    def add_to_menu(self, menu_id: str, action: QAction, before: str | None = None, at_top: bool = False) -> None:
        """Place `action` in menu `menu_id`: at the end, before the named action, or at the top."""
        menu = self._menus[menu_id]
        anchor = self._anchor(menu, before, at_top)
        menu.insertAction(anchor, action) if anchor is not None else menu.addAction(action)
        if action not in self._host.actions():
            self._host.addAction(action)

    def add_separator(self, menu_id: str, before: str | None = None) -> None:
        menu = self._menus[menu_id]
        anchor = self._anchor(menu, before, False)
        menu.insertSeparator(anchor) if anchor is not None else menu.addSeparator()

    def _anchor(self, menu: QMenu, before: str | None, at_top: bool) -> QAction | None:
        if at_top:
            return menu.actions()[0] if menu.actions() else None
        return self._actions[before] if before is not None else None


def make_action(host: QWidget, name: str, text: str, slot: Callable[[], object], tip: str = "",
                shortcut: str = "") -> QAction:
    """A feature's action (objectName action_<name>), with its tip as status and tool tip."""
    action = QAction(text, host)
    action.setObjectName(f"action_{name}")
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    return action
