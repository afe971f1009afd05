"""DICOM tag browser: a dock with a filterable table of (tag, name, VR, value).

During a practice packet the table is blinded (`TagTable.set_blinded`): any tag could give the answer
away (descriptions, comments, file paths), so the dock shows one line instead until the packet ends."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
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

from cxrviewer.ui.widgets import make

COLUMNS = ("Tag", "Name", "VR", "Value")
HIDDEN_VALUE = "(hidden)"
BLINDED_MESSAGE = "Hidden during a practice packet"
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


class TagTableModel(QAbstractTableModel):
    """Read-only (tag, name, VR, value) rows with a case-insensitive filter over every column.

    Identifying values read as "(hidden)" when anonymised, and the filter matches what is
    shown, so typing a name cannot reveal a hidden row. A plain model over a list (not
    QStandardItemModel + a proxy): a 20,000-element header is one model reset, and filtering
    is one substring scan of precomputed lower-case rows per keystroke.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str, str, str]] = []
        self._identifying: list[bool] = []
        self._haystacks: list[str] = []
        self._visible: list[int] = []
        self._anonymise = False
        self._blinded = False
        self._needle = ""

    def set_rows(self, rows: list[tuple[str, str, str, str]]) -> None:
        self._rows = rows
        self._identifying = [is_identifying(tag, name) and bool(value) for tag, name, _, value in rows]
        self._refilter(rebuild=True)

    def set_anonymise(self, anonymise: bool) -> None:
        if anonymise != self._anonymise:
            self._anonymise = anonymise
            self._refilter(rebuild=True)

    def set_blinded(self, blinded: bool) -> None:
        """Blinded: no row is shown (nor matched by the filter) however many there are."""
        if blinded != self._blinded:
            self._blinded = blinded
            self._refilter(rebuild=False)

    def is_blinded(self) -> bool:
        return self._blinded

    def set_filter(self, text: str) -> None:
        needle = text.strip().lower()
        if needle != self._needle:
            self._needle = needle
            self._refilter(rebuild=False)

    def total(self) -> int:
        return len(self._rows)

    def _shown(self, row: int, column: int) -> str:
        if column == 3 and self._anonymise and self._identifying[row]:
            return HIDDEN_VALUE
        return self._rows[row][column]

    def _refilter(self, rebuild: bool) -> None:
        self.beginResetModel()
        if rebuild:
            self._haystacks = [
                "\x1f".join(self._shown(row, column) for column in range(len(COLUMNS))).lower()
                for row in range(len(self._rows))
            ]
        needle = self._needle
        if self._blinded:
            self._visible = []
        elif needle:
            self._visible = [row for row, text in enumerate(self._haystacks) if needle in text]
        else:
            self._visible = list(range(len(self._rows)))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._visible)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole or (role == Qt.ItemDataRole.ToolTipRole and index.column() == 3):
            return self._shown(self._visible[index.row()], index.column())
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable


class TagTable(QWidget):
    """Search box + table of DICOM tags (case-insensitive filter over every column)."""

    rows_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._message = ""

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter tags (name, tag, VR or value)…")
        self.search.setClearButtonEnabled(True)
        self.search.setObjectName("tagSearch")

        self.model = TagTableModel(self)

        self.table = QTableView(self)
        self.table.setModel(self.model)
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
        self._message = message
        self.model.set_rows([(format_tag(r[0]), str(r[1]), str(r[2]), _shorten(str(r[3]))) for r in rows])
        self._update_status()

    def clear(self, message: str = "") -> None:
        self.set_rows([], message)

    def set_anonymise(self, anonymise: bool) -> None:
        self.model.set_anonymise(anonymise)
        self._update_status()

    def set_blinded(self, blinded: bool) -> None:
        """A practice packet: one line ("Hidden during a practice packet") instead of the tags, until lifted.
        Rows set meanwhile are kept and shown when it is lifted."""
        self.model.set_blinded(blinded)
        self.search.setVisible(not blinded)
        self.table.setVisible(not blinded)
        self._update_status()

    def is_blinded(self) -> bool:
        return self.model.is_blinded()

    def row_count(self) -> int:
        """Rows visible after filtering."""
        return self.model.rowCount()

    def total_rows(self) -> int:
        return self.model.total()

    def _on_search_text_changed(self, text: str) -> None:
        self.model.set_filter(text)
        self._update_status()

    def _update_status(self) -> None:
        total = self.model.total()
        shown = self.model.rowCount()
        if self.model.is_blinded():
            self.status.setText(BLINDED_MESSAGE)
        elif total == 0:
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
        self.tags = make.fill_dock(self, "tagDock", TagTable(self))
        self.setAllowedAreas(Qt.DockWidgetArea.AllDockWidgetAreas)
