"""Help ▸ Keyboard Shortcuts (F1): every shortcut of the window, read from its actions.

The rows come from the window's QActions (and its QShortcuts with a what's-this text) each
time the sheet opens, so a new action with a shortcut shows up without editing a list here.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class ShortcutRow:
    command: str
    keys: str


def _keys_text(sequences: list[QKeySequence]) -> str:
    return ",  ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in sequences if not s.isEmpty())


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window: QWidget) -> list[ShortcutRow]:
    """One row per command with a shortcut (actions first, then widget shortcuts), by name."""
    rows: dict[tuple[str, str], ShortcutRow] = {}
    seen: set[int] = set()
    for action in window.findChildren(QAction):
        if id(action) in seen or action.isSeparator():
            continue
        seen.add(id(action))
        keys = _keys_text(list(action.shortcuts()))
        command = _clean(action.text()).split("   ")[0]   # presets: drop the "(C …, W …)" part
        if keys and command:
            rows.setdefault((command, keys), ShortcutRow(command, keys))
    for shortcut in window.findChildren(QShortcut):
        command = shortcut.whatsThis().strip()
        keys = _keys_text([shortcut.key()])
        if keys and command:
            rows.setdefault((command, keys), ShortcutRow(command, keys))
    return sorted(rows.values(), key=lambda row: row.command.lower())


class ShortcutSheet(QDialog):
    """A searchable table of the window's shortcuts (type to filter by command or key)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setObjectName("shortcutSheet")
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(480, 560)
        self.search = QLineEdit(self)
        self.search.setObjectName("shortcutSearch")
        self.search.setPlaceholderText("Search commands or keys…")
        self.search.setClearButtonEnabled(True)
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("shortcutTable")
        self.table.setHorizontalHeaderLabels(["Command", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self._rows = shortcut_rows(window)
        self.table.setRowCount(len(self._rows))
        for number, row in enumerate(self._rows):
            self.table.setItem(number, 0, QTableWidgetItem(row.command))
            self.table.setItem(number, 1, QTableWidgetItem(row.keys))
        self.search.textChanged.connect(self._on_search_text_changed)
        self.search.setFocus(Qt.FocusReason.OtherFocusReason)

    def rows(self) -> list[ShortcutRow]:
        return list(self._rows)

    def visible_rows(self) -> list[ShortcutRow]:
        return [row for number, row in enumerate(self._rows) if not self.table.isRowHidden(number)]

    def _on_search_text_changed(self, text: str) -> None:
        words = text.lower().split()
        for number, row in enumerate(self._rows):
            haystack = f"{row.command} {row.keys}".lower()
            self.table.setRowHidden(number, not all(word in haystack for word in words))
