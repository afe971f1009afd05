"""DICOM tag browser: a dock with a filterable table of (tag, name, VR, value)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("Tag", "Name", "VR", "Value")
HIDDEN_VALUE = "(hidden)"
MAX_VALUE_CHARS = 500

# Tags hidden when "Anonymise display" is on: names, IDs, birth dates, accession, institution.
IDENTIFYING_TAGS = frozenset(
    {
        (0x0008, 0x0050),  # Accession Number
        (0x0008, 0x0080),  # Institution Name
        (0x0008, 0x0081),  # Institution Address
        (0x0008, 0x0090),  # Referring Physician's Name
        (0x0008, 0x1010),  # Station Name
        (0x0008, 0x1040),  # Institutional Department Name
        (0x0008, 0x1050),  # Performing Physician's Name
        (0x0008, 0x1070),  # Operators' Name
        (0x0010, 0x0010),  # Patient's Name
        (0x0010, 0x0020),  # Patient ID
        (0x0010, 0x0021),  # Issuer of Patient ID
        (0x0010, 0x0030),  # Patient's Birth Date
        (0x0010, 0x0032),  # Patient's Birth Time
        (0x0010, 0x1000),  # Other Patient IDs
        (0x0010, 0x1001),  # Other Patient Names
        (0x0010, 0x1040),  # Patient's Address
        (0x0010, 0x2154),  # Patient's Telephone Numbers
        (0x0020, 0x0010),  # Study ID
    }
)

_TAG_RE = re.compile(r"([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})")


def parse_tag(tag: object) -> tuple[int, int] | None:
    """(group, element) from a pydicom tag, an int, or text like '(0010,0010)'."""
    if isinstance(tag, int):
        return (tag >> 16) & 0xFFFF, tag & 0xFFFF
    group = getattr(tag, "group", None)
    element = getattr(tag, "element", None)
    if isinstance(group, int) and isinstance(element, int):
        return group, element
    match = _TAG_RE.search(str(tag))
    if match:
        return int(match.group(1), 16), int(match.group(2), 16)
    return None


def format_tag(tag: object) -> str:
    """'(GGGG,EEEE)'; text tags are kept as given (nested ones carry '>' prefixes)."""
    if isinstance(tag, str):
        return tag
    parsed = parse_tag(tag)
    if parsed is None:
        return str(tag)
    return f"({parsed[0]:04X},{parsed[1]:04X})"


def is_identifying(tag: object, name: str = "") -> bool:
    parsed = parse_tag(tag)
    if parsed is not None and parsed in IDENTIFYING_TAGS:
        return True
    lowered = name.lower()
    return "patient's name" in lowered or "patient id" in lowered or "birth date" in lowered


class TagTable(QWidget):
    """Search box + table of DICOM tags (case-insensitive filter over every column)."""

    rows_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str, str, str]] = []
        self._anonymise = False
        self._message = ""

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter tags (name, tag, VR or value)…")
        self.search.setClearButtonEnabled(True)
        self.search.setObjectName("tagSearch")

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.resizeSection(1, 170)

        self.status = QLabel(self)
        self.status.setObjectName("tagStatus")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

        self.search.textChanged.connect(self._on_search_text_changed)
        self._update_status()

    def set_rows(self, rows: Iterable[Sequence[object]], message: str = "") -> None:
        """Show `rows` of (tag, name, VR, value); `message` explains an empty table."""
        self._rows = [
            (format_tag(r[0]), str(r[1]), str(r[2]), _shorten(str(r[3]))) for r in rows
        ]
        self._message = message
        self._populate()

    def clear(self, message: str = "") -> None:
        self.set_rows([], message)

    def set_anonymise(self, anonymise: bool) -> None:
        if anonymise != self._anonymise:
            self._anonymise = anonymise
            self._populate()

    def row_count(self) -> int:
        """Rows visible after filtering."""
        return self.proxy.rowCount()

    def total_rows(self) -> int:
        return self.model.rowCount()

    def _populate(self) -> None:
        self.model.removeRows(0, self.model.rowCount())
        for tag, name, vr, value in self._rows:
            if self._anonymise and is_identifying(tag, name) and value:
                value = HIDDEN_VALUE
            items = [QStandardItem(text) for text in (tag, name, vr, value)]
            for item in items:
                item.setEditable(False)
            items[3].setToolTip(value)
            self.model.appendRow(items)
        self._update_status()

    def _on_search_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update_status()

    def _update_status(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == 0:
            self.status.setText(self._message or "No DICOM tags")
        elif shown == total:
            self.status.setText(f"{total} tags")
        else:
            self.status.setText(f"{shown} of {total} tags")
        self.rows_changed.emit(shown)


def _shorten(value: str) -> str:
    value = value.replace("\r", " ").replace("\n", " ")
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


class TagDock(QDockWidget):
    """Dock wrapper around TagTable."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("DICOM tags", parent)
        self.setObjectName("tagDock")
        self.tags = TagTable(self)
        self.setWidget(self.tags)
        self.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
