"""A practice packet's score sheet: accuracy, sensitivity, specificity, agreement with the model's call,
the discordant cases (click one to open it), time per case and calibration; CSV and one-page PDF."""
from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.core.errors import CxrError
from cxrviewer.teaching.practice import (
    PacketState,
    ScoreSheet,
    model_cell,
    percent,
    summary_lines,
    write_score_csv,
    write_score_pdf,
)
from cxrviewer.ui.widgets import make

log = logging.getLogger(__name__)

WITHHELD_TIP = ("The image was flagged as outside what the model knows: the viewer withheld its call, so this "
                "case is not counted in the agreement with the model nor in the model's accuracy")


class ScoreSheetDialog(QDialog):
    """The packet's score sheet; click a case to open its image."""

    open_requested = Signal(object)    # Path of the original image

    COLUMNS = ("#", "Known", "Your call", "Conf.", "Time", "Model", "Right?", "File")

    def __init__(self, state: PacketState, sheet: ScoreSheet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practiceScoreSheet")
        self.setWindowTitle("Practice packet — score sheet")
        self.state, self.sheet = state, sheet
        self.summary = QLabel(self)
        self.summary.setObjectName("practiceSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setText(self._summary_html())

        self.model_right_list = self._case_list("modelRightYouWrong", sheet.model_right_you_wrong)
        self.you_right_list = self._case_list("youRightModelWrong", sheet.you_right_model_wrong)
        lists = QHBoxLayout()
        for title, widget in (("Model right, you wrong", self.model_right_list),
                              ("You right, model wrong", self.you_right_list)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b> (click to open)", self))
            column.addWidget(widget)
            lists.addLayout(column)

        self.table = QTableWidget(len(sheet.cases), len(self.COLUMNS), self)
        self.table.setObjectName("practiceCases")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, score in enumerate(sheet.cases):
            case, result = score.case, score.result
            mark = {True: "✔", False: "✘", None: "—"}[score.correct]
            values = (str(case.number), case.label, result.call if result else "(not read)",
                      f"{result.confidence} %" if result else "", f"{result.seconds:.0f} s" if result else "",
                      model_cell(result), mark, Path(case.path).name)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, case.path)
                if score.model_withheld:
                    item.setToolTip(WITHHELD_TIP)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(self._on_table_cell_double_clicked)

        self.csv_button = make.button(self, "Export CSV…", "practiceExportCsv", clicked=self._on_csv_button_clicked)
        self.pdf_button = make.button(self, "Export PDF…", "practiceExportPdf", clicked=self._on_pdf_button_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.csv_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.pdf_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(lists)
        layout.addWidget(QLabel("<b>All cases</b> (double-click to open)", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(820, 760)

    def summary_text(self) -> str:
        return self.summary.text()

    def _summary_html(self) -> str:
        sheet = self.sheet
        lines = "<br>".join(html.escape(line) for line in summary_lines(sheet))
        rows = "".join(
            f"<tr><td>{b.low}–{b.high} %</td><td align='right'>{b.count}</td>"
            f"<td align='right'>{percent(b.mean_confidence)}</td><td align='right'>{percent(b.accuracy)}</td></tr>"
            for b in sheet.bins)
        calibration = ("<p><b>Calibration</b> (well calibrated: the share right matches your confidence)</p>"
                       "<table cellspacing='0' cellpadding='3'><tr><th align='left'>Confidence</th><th>Cases</th>"
                       f"<th>Mean confidence</th><th>Right</th></tr>{rows}</table>")
        return f"<p>{lines}</p>{calibration}"

    def _case_list(self, name: str, scores) -> QListWidget:
        widget = QListWidget(self)
        widget.setObjectName(name)
        widget.setMaximumHeight(110)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for score in scores:
            result = score.result
            model = result.model_label if result else ""
            item = QListWidgetItem(f"#{score.case.number}  known {score.case.label} · you {result.call if result else '—'}"
                                   f" · model {model}\n     {Path(score.case.path).name}")
            item.setToolTip(score.case.path)
            item.setData(Qt.ItemDataRole.UserRole, score.case.path)
            widget.addItem(item)
        if not scores:
            placeholder = QListWidgetItem("none")
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            widget.addItem(placeholder)
        widget.itemClicked.connect(self._on_list_item_clicked)
        return widget

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        return self._export(path, "CSV (*.csv)", "csv", lambda target: write_score_csv(self.sheet, target))

    def export_pdf(self, path: str | Path | None = None) -> Path | None:
        return self._export(path, "PDF (*.pdf)", "pdf", lambda target: write_score_pdf(self.state, self.sheet, target))

    def _export(self, path: str | Path | None, file_filter: str, suffix: str,
                write: Callable[[str | Path], Path]) -> Path | None:
        """Write to `path` (asked for when None); a failure is a warning box, not an exception."""
        path = path or self._ask_path(file_filter, suffix)
        if not path:
            return None
        try:
            return write(path)
        except CxrError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None

    def _ask_path(self, file_filter: str, suffix: str) -> str:
        name = f"practice-{self.state.packet_id}.{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export the score sheet", name, file_filter)
        return path

    def _on_list_item_clicked(self, item: QListWidgetItem) -> None:
        path = item.data(Qt.ItemDataRole.UserRole)
        if path:
            self.open_requested.emit(Path(path))

    def _on_table_cell_double_clicked(self, row: int, column: int) -> None:
        item = self.table.item(row, column)
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self.open_requested.emit(Path(item.data(Qt.ItemDataRole.UserRole)))

    def _on_csv_button_clicked(self) -> None:
        self.export_csv()

    def _on_pdf_button_clicked(self) -> None:
        self.export_pdf()
