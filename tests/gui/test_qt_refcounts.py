"""Guard against a Qt binding that returns None without a reference (PySide6 6.12.0, Python 3.11).

Each call of a void method then lowers None's reference count by one; after tens of
thousands of ordinary GUI calls (labels updated while window/level is dragged, tree rows
filled) the interpreter aborts with "none_dealloc: deallocating None". From Python 3.12
None is immortal and its count does not move at all, so the check holds trivially there.
"""
from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem
from PySide6.QtWidgets import QLabel, QTreeWidgetItem

CALLS = 2000


def test_void_qt_calls_do_not_consume_references_to_none(qapp) -> None:
    label = QLabel()
    item = QTreeWidgetItem(["x"])
    standard = QStandardItem("x")
    calls = {
        "QLabel.setText": lambda: label.setText("y"),
        "QWidget.setEnabled": lambda: label.setEnabled(True),
        "QTreeWidgetItem.setData": lambda: item.setData(0, Qt.ItemDataRole.UserRole, 1),
        "QTreeWidgetItem.setToolTip": lambda: item.setToolTip(0, "y"),
        "QStandardItem.setText": lambda: standard.setText("y"),
    }
    lost = {}
    for name, call in calls.items():
        before = sys.getrefcount(None)
        for _ in range(CALLS):
            call()
        lost[name] = before - sys.getrefcount(None)
    # a correct binding leaves the count where it was (± a few references made meanwhile)
    assert all(value < CALLS // 10 for value in lost.values()), lost
