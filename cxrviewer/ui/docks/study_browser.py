"""Study browser: a patient → study → series → image tree in a dock.

The main window turns the opened files into `BrowserEntry`s (from the DICOM headers when
there are any, else from folders) in display order; the browser shows them and reports the
index of the image the user picks. Identifiers obey "Anonymise display". Each image row
gets a thumbnail (`ThumbnailLoader`) once it has been on screen.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from cxrviewer.core.errors import printable_name, printable_path
from cxrviewer.ui.widgets import make
from cxrviewer.ui.workers.thumbnails import ThumbnailLoader

if TYPE_CHECKING:
    from cxrviewer.core.study import StudyTree as GroupedImages
    from cxrviewer.state.session import DisplayName

INDEX_ROLE = Qt.ItemDataRole.UserRole
ICON_SIDE = 32
FIRST_THUMBNAILS_DELAY_MS = 300   # let the first image decode before thumbnails compete for the CPU
FILES_KEY = "~files"   # patient key of the non-DICOM "Files" group


@dataclass(frozen=True)
class BrowserEntry:
    """One image file as the browser shows it; keys group, labels display."""

    path: Path
    label: str
    patient_key: str = ""
    patient_name: str = ""
    patient_id: str = ""
    study_key: str = ""
    study_label: str = ""
    series_key: str = ""
    series_label: str = ""
    frame_count: int = 1
    path_hidden: bool = False   # a display name stands in for the file's name: no path in the tooltip


def patient_label(entry: BrowserEntry, number: int, anonymise: bool) -> str:
    if entry.patient_key == FILES_KEY:
        return entry.patient_name or "Files"
    if anonymise:
        return f"Patient {number}"
    parts = [p for p in (entry.patient_name, f"ID {entry.patient_id}" if entry.patient_id else "") if p]
    return "  ".join(parts) if parts else "Unknown patient"


class StudyTree(QTreeWidget):
    """The tree itself; emits the flat index of the chosen image."""

    image_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("studyTree")
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setExpandsOnDoubleClick(True)
        self.setIconSize(QSize(ICON_SIDE, ICON_SIDE))
        self._entries: list[BrowserEntry] = []
        self._image_items: list[QTreeWidgetItem] = []
        self._items_by_path: dict[str, list[QTreeWidgetItem]] = {}
        self._failed: dict[int, str] = {}
        self._anonymise = False
        blank = QPixmap(ICON_SIDE, ICON_SIDE)
        blank.fill(Qt.GlobalColor.transparent)
        self._blank_icon = QIcon(blank)    # keeps the row height while the thumbnail is made
        self.thumbnails = ThumbnailLoader(self)
        self.thumbnails.ready.connect(self._on_thumbnails_ready)
        self._visible_timer = make.timer(self, self._request_visible_thumbnails, single_shot=True)
        self.itemClicked.connect(self._on_item_clicked)
        self.itemActivated.connect(self._on_item_activated)
        self.itemExpanded.connect(self._on_item_expanded)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll_value_changed)

    def entries(self) -> list[BrowserEntry]:
        return list(self._entries)

    def set_entries(self, entries: list[BrowserEntry]) -> None:
        self._entries = list(entries)
        self._failed = {}
        self.thumbnails.reset()
        self._rebuild()
        self._schedule_thumbnails(FIRST_THUMBNAILS_DELAY_MS)

    def thumbnail_of(self, index: int) -> QImage | None:
        """The thumbnail shown for image `index`, or None while there is none."""
        if 0 <= index < len(self._entries):
            return self.thumbnails.cached(self._entries[index].path)
        return None

    def resizeEvent(self, event) -> None:  # type: ignore[override]
        super().resizeEvent(event)
        self._schedule_thumbnails()

    def set_anonymise(self, anonymise: bool) -> None:
        if anonymise != self._anonymise:
            self._anonymise = anonymise
            current = self.current_index()
            self._rebuild()
            if current is not None:
                self.set_current(current)

    def set_current(self, index: int) -> None:
        if 0 <= index < len(self._image_items):
            item = self._image_items[index]
            self.blockSignals(True)
            self.setCurrentItem(item)
            self.scrollToItem(item)
            self.blockSignals(False)

    def current_index(self) -> int | None:
        item = self.currentItem()
        if item is None:
            return None
        value = item.data(0, INDEX_ROLE)
        return int(value) if value is not None else None

    def mark_failed(self, index: int, message: str) -> None:
        self._failed[index] = message
        if 0 <= index < len(self._image_items):
            self._style_failed(self._image_items[index], message)

    def image_item(self, index: int) -> QTreeWidgetItem:
        return self._image_items[index]

    def _style_failed(self, item: QTreeWidgetItem, message: str) -> None:
        item.setForeground(0, QBrush(QColor(220, 90, 90)))
        item.setToolTip(0, message)

    def _schedule_thumbnails(self, delay_ms: int = 60) -> None:
        if self._entries and not self._visible_timer.isActive():
            self._visible_timer.start(delay_ms)

    def _request_visible_thumbnails(self) -> None:
        item = self.itemAt(0, 0)
        bottom = self.viewport().height()
        while item is not None and self.visualItemRect(item).top() < bottom:
            value = item.data(0, INDEX_ROLE)
            if value is not None and 0 <= int(value) < len(self._entries):
                self.thumbnails.request(self._entries[int(value)].path)
            item = self.itemBelow(item)

    def _on_thumbnails_ready(self, path: str, picture: QImage) -> None:
        items = self._items_by_path.get(path)
        if items:
            icon = QIcon(QPixmap.fromImage(picture))
            for item in items:
                item.setIcon(0, icon)

    def _rebuild(self) -> None:
        self.clear()
        self._image_items = []
        self._items_by_path = {}
        patients: dict[str, QTreeWidgetItem] = {}
        studies: dict[tuple[str, str], QTreeWidgetItem] = {}
        series: dict[tuple[str, str, str], QTreeWidgetItem] = {}
        for index, entry in enumerate(self._entries):
            pkey = entry.patient_key or "?"
            patient = patients.get(pkey)
            if patient is None:
                patient = QTreeWidgetItem(self, [printable_name(patient_label(entry, len(patients) + 1, self._anonymise))])
                patients[pkey] = patient
            skey = (pkey, entry.study_key or "?")
            study = studies.get(skey)
            if study is None:
                study = QTreeWidgetItem(patient, [printable_name(entry.study_label or "Study")])
                studies[skey] = study
            rkey = (*skey, entry.series_key or "?")
            group = series.get(rkey)
            if group is None:
                group = QTreeWidgetItem(study, [printable_name(entry.series_label or "Series")])
                series[rkey] = group
            label = printable_name(entry.label)   # a bidi override would fake the extension
            if entry.frame_count > 1:
                label += f"  ({entry.frame_count} frames)"
            item = QTreeWidgetItem(group, [label])
            item.setData(0, INDEX_ROLE, index)
            if entry.path_hidden:
                item.setToolTip(0, label)
            else:
                item.setToolTip(0, printable_name(entry.path.name) if self._anonymise
                                else printable_path(entry.path))   # folders may be names
            known = self.thumbnails.cached(entry.path)
            item.setIcon(0, QIcon(QPixmap.fromImage(known)) if known is not None else self._blank_icon)
            self._items_by_path.setdefault(str(entry.path), []).append(item)
            if index in self._failed:
                self._style_failed(item, self._failed[index])
            self._image_items.append(item)
        self.expandAll()

    def _on_item_expanded(self, _item: QTreeWidgetItem) -> None:
        self._schedule_thumbnails()

    def _on_scroll_value_changed(self, _value: int) -> None:
        self._schedule_thumbnails()

    def _on_item_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        self._emit_for(item)

    def _on_item_activated(self, item: QTreeWidgetItem, column: int) -> None:
        self._emit_for(item)

    def _emit_for(self, item: QTreeWidgetItem) -> None:
        value = item.data(0, INDEX_ROLE)
        if value is not None:
            self.image_selected.emit(int(value))


class StudyBrowserDock(QDockWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Studies", parent)
        self.tree = make.fill_dock(self, "studyDock", StudyTree(self))


def with_display_names(entries: list[BrowserEntry],
                       name_of: Callable[[Path], DisplayName | None]) -> list[BrowserEntry]:
    """`entries`, those whose file has a display name (a practice case) showing it instead of the file's
    and the folder's names, and no DICOM header text either (patient, series description)."""
    named: list[BrowserEntry] = []
    for entry in entries:
        name = name_of(entry.path)
        named.append(entry if name is None else
                     replace(entry, label=name.image, study_label=name.study, path_hidden=True,
                             patient_name="Practice packet", patient_id="", series_label="Images"))
    return named


def entries_from_paths(paths: list[Path]) -> list[BrowserEntry]:
    """Browser entries in display order: DICOM files grouped by their headers, then others.

    Files whose header cannot be read are listed under "Files"; opening them reports why.
    """
    from cxrviewer.core.study import group_images

    return entries_from_tree(group_images(paths))


def entries_from_tree(tree: GroupedImages) -> list[BrowserEntry]:
    """Browser entries in display order from a grouped `StudyTree` (made in a scan process)."""
    entries: list[BrowserEntry] = []
    for p_number, patient in enumerate(tree.patients):
        patient_key = f"p{p_number}:{patient.patient_id}:{patient.name}"
        for s_number, study in enumerate(patient.studies):
            # The accession number stays out of the label: it identifies the patient.
            study_label = " ".join(p for p in (study.date, study.description or "Study") if p)
            for r_number, series in enumerate(study.series):
                for instance in series.instances:
                    entries.append(
                        BrowserEntry(
                            path=instance.path,
                            label=instance.path.name,
                            patient_key=patient_key,
                            patient_name=patient.name,
                            patient_id=patient.patient_id,
                            study_key=f"{s_number}:{study.uid}",
                            study_label=study_label,
                            series_key=f"{r_number}:{series.uid}",
                            series_label=series.label,
                            frame_count=instance.frame_count,
                        )
                    )
    for instance in tree.files:
        folder = instance.path.parent
        entries.append(
            BrowserEntry(
                path=instance.path,
                label=instance.path.name,
                patient_key=FILES_KEY,
                patient_name="Files (not DICOM)",
                study_key=str(folder),
                study_label=folder.name or str(folder),
                series_key=str(folder),
                series_label="Images",
                frame_count=instance.frame_count,
            )
        )
    return entries
