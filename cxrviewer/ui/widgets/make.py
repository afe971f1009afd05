"""Named widgets in one call: the objectName / tool tip / word wrap / clicked lines that every dock and
dialog used to write out by hand for each label, button, check box, spin box and read-only table.

Each function returns the widget, so a caller keeps it as an attribute (tests find widgets by
objectName). Nothing here holds state.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from PySide6.QtCore import QObject, Qt, QTimer, SignalInstance
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QCheckBox,
    QDockWidget,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QToolButton,
    QWidget,
)

__all__ = ["button", "check", "fill_dock", "label", "spin", "table", "timer", "tool_button"]

Slot = Callable[..., object] | SignalInstance
W = TypeVar("W", bound=QWidget)


def label(parent: QWidget, name: str, text: str = "", *, wrap: bool = False,
          rich: bool = False) -> QLabel:
    """A QLabel named `name`; `wrap` for prose, `rich` for HTML text."""
    widget = QLabel(text, parent)
    widget.setObjectName(name)
    widget.setWordWrap(wrap)
    if rich:
        widget.setTextFormat(Qt.TextFormat.RichText)
    return widget


def _named_button(widget: QAbstractButton, name: str, tip: str, clicked: Slot | None,
                  checkable: bool) -> None:
    widget.setObjectName(name)
    if tip:
        widget.setToolTip(tip)
    widget.setCheckable(checkable)
    if clicked is not None:
        (widget.toggled if checkable else widget.clicked).connect(clicked)


def button(parent: QWidget, text: str, name: str, tip: str = "", clicked: Slot | None = None, *,
           checkable: bool = False) -> QPushButton:
    """A QPushButton; `clicked` (a slot or a signal to forward to) gets `toggled` when `checkable`."""
    widget = QPushButton(text, parent)
    _named_button(widget, name, tip, clicked, checkable)
    return widget


def tool_button(parent: QWidget, name: str, text: str = "", tip: str = "", clicked: Slot | None = None, *,
                checkable: bool = False) -> QToolButton:
    """A QToolButton, as `button` does it."""
    widget = QToolButton(parent)
    widget.setText(text)
    _named_button(widget, name, tip, clicked, checkable)
    return widget


def check(parent: QWidget, text: str, name: str, checked: bool = False, tip: str = "") -> QCheckBox:
    """A QCheckBox, checked or not."""
    widget = QCheckBox(text, parent)
    widget.setObjectName(name)
    widget.setChecked(checked)
    if tip:
        widget.setToolTip(tip)
    return widget


def spin(parent: QWidget, name: str, minimum: int, maximum: int, value: int, tip: str = "") -> QSpinBox:
    """A QSpinBox over minimum…maximum, showing `value`."""
    widget = QSpinBox(parent)
    widget.setObjectName(name)
    widget.setRange(minimum, maximum)
    widget.setValue(value)
    if tip:
        widget.setToolTip(tip)
    return widget


def table(parent: QWidget, name: str, columns: Sequence[str], activated: Callable[[int, int], object],
          tips: dict[int, str] | None = None) -> QTableWidget:
    """A read-only table of whole-row selections, no row numbers, columns sized to their contents,
    the last one stretched; Enter or a double-click on a cell calls `activated(row, column)`."""
    widget = QTableWidget(0, len(columns), parent)
    widget.setObjectName(name)
    widget.setHorizontalHeaderLabels(list(columns))
    for column, tip in (tips or {}).items():
        widget.horizontalHeaderItem(column).setToolTip(tip)
    widget.verticalHeader().setVisible(False)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setAlternatingRowColors(True)
    header = widget.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    widget.cellActivated.connect(activated)
    widget.cellDoubleClicked.connect(activated)
    return widget


def timer(parent: QObject, timeout: Slot, interval_ms: int = 0, *, single_shot: bool = False) -> QTimer:
    """A stopped QTimer calling `timeout` every `interval_ms` (once per start when `single_shot`)."""
    widget = QTimer(parent)
    widget.setSingleShot(single_shot)
    widget.setInterval(interval_ms)
    widget.timeout.connect(timeout)
    return widget


def fill_dock(dock: QDockWidget, name: str, widget: W) -> W:
    """Name `dock` (its objectName, saved with the window state) and make `widget` its content."""
    dock.setObjectName(name)
    dock.setWidget(widget)
    return widget
