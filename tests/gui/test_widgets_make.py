"""ui/widgets/make: the named-widget helpers the docks and dialogs share (#15: one place for widget setup)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QTableWidgetItem, QWidget

from cxrviewer.ui.widgets import make


def test_table_is_read_only_and_reports_activated_cells(qtbot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    activated: list[tuple[int, int]] = []
    table = make.table(host, "things", ("A", "B"), lambda row, column: activated.append((row, column)), {1: "tip"})
    assert table.objectName() == "things" and table.columnCount() == 2
    assert table.horizontalHeaderItem(0).text() == "A" and table.horizontalHeaderItem(1).toolTip() == "tip"
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert table.verticalHeader().isHidden()   # no row numbers
    table.setRowCount(1)
    table.setItem(0, 1, QTableWidgetItem("x"))
    table.cellDoubleClicked.emit(0, 1)
    assert activated == [(0, 1)]


def test_buttons_forward_clicks_or_toggles(qtbot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    clicks: list[object] = []
    plain = make.button(host, "Go", "goButton", "tip", lambda: clicks.append("go"))
    toggle = make.button(host, "Pause", "pauseButton", clicked=clicks.append, checkable=True)
    assert (plain.objectName(), plain.toolTip(), plain.isCheckable()) == ("goButton", "tip", False)
    QTest.mouseClick(plain, Qt.MouseButton.LeftButton)
    toggle.setChecked(True)
    assert clicks == ["go", True]
    tool = make.tool_button(host, "closeButton", "✕", clicked=lambda: clicks.append("closed"))
    tool.click()
    assert tool.text() == "✕" and clicks[-1] == "closed"


def test_label_spin_check_timer_and_dock(qtbot) -> None:
    host = QWidget()
    qtbot.addWidget(host)
    label = make.label(host, "note", "<b>hi</b>", wrap=True, rich=True)
    assert label.wordWrap() and label.textFormat() == Qt.TextFormat.RichText and label.objectName() == "note"
    spin = make.spin(host, "count", 1, 9, 4, "how many")
    assert (spin.minimum(), spin.maximum(), spin.value(), spin.toolTip()) == (1, 9, 4, "how many")
    assert make.check(host, "On", "onCheck", checked=True).isChecked()
    fired: list[int] = []
    timer = make.timer(host, lambda: fired.append(1), 5, single_shot=True)
    assert timer.isSingleShot() and timer.interval() == 5 and not timer.isActive()
    timer.start()
    qtbot.waitUntil(lambda: fired == [1], timeout=2000)
    dock = QDockWidget("Dock")
    qtbot.addWidget(dock)
    inner = make.fill_dock(dock, "someDock", QWidget())
    assert dock.objectName() == "someDock" and dock.widget() is inner
