""""My reads": the trainee's stored calls, agreement with the model and with known labels, calibration.

The calibration curve (a reliability diagram: stated confidence vs. how often the call
matched the folder's known label) is drawn with matplotlib's Agg backend into a QImage, so
no Qt backend of matplotlib is involved. Reads of images without a known label count for
agreement with the model only: the model's opinion is not the truth. Reads of images the
OOD gate flagged as unlike the model's training data are left out of agreement with the model
and of the model's accuracy (the summary says how many) but count for the trainee's accuracy
and calibration.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.teaching.packet_history import PAUSED, PacketSummary, packet_summaries
from cxrviewer.teaching.reads import (
    CalibrationBin,
    ReadRecord,
    ReadStore,
    brier_score,
    calibration_curve,
    call_title,
    flagged_left_out,
    summarise,
)
from cxrviewer.ui.shell.theme import set_tone
from cxrviewer.ui.widgets import make

COLUMNS = ("When (UTC)", "Image", "Call", "Conf.", "Model", "= model", "Label", "= label", "Point")
PACKET_COLUMNS = ("Date (UTC)", "Cases", "Score", "Time", "Status")
CALIBRATION_BINS = 5
FLAGGED_MARK = "⚠"     # the "= model" cell of a read of an image flagged as unlike the model's training data
FLAGGED_TIP = ("The image was flagged as outside what the model knows: its answer was a guess, "
               "so this read is not counted in the agreement with the model nor in the model's accuracy")


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f} %"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("✔" if ok else "✘")


def _left_out(n_flagged: int) -> str:
    """The note "; 2 flagged reads not counted" for a figure about the model ("" when none was left out)."""
    left_out = flagged_left_out(n_flagged, "read")
    return f"; {left_out}" if left_out else ""


def summary_lines(records: Sequence[ReadRecord]) -> list[str]:
    """The summary shown above the table (also used by tests)."""
    summary = summarise(records)
    lines = [f"{summary.n_reads} read{'s' if summary.n_reads != 1 else ''}"]
    lines.append(
        f"Agreement with the model: {_percent(summary.model_agreement)} "
        f"({summary.n_agree_model} of {summary.n_with_model}{_left_out(summary.n_flagged)})"
    )
    if summary.n_with_label:
        lines.append(
            f"Your accuracy against known labels: {_percent(summary.label_agreement)} "
            f"({summary.n_agree_label} of {summary.n_with_label}); the model on the same images: "
            f"{_percent(summary.model_label_agreement)} ({summary.n_model_agree_label} of "
            f"{summary.n_model_with_label}{_left_out(summary.n_model_label_flagged)})"
        )
        brier = brier_score(records)
        if brier is not None:
            lines.append(f"Brier score of your confidence: {brier:.3f} (0 is perfect; always saying 50 % gives 0.25)")
    else:
        lines.append("No reads of images from labelled folders yet: accuracy and calibration need known labels.")
    return lines


def calibration_image(bins: Sequence[CalibrationBin], size: tuple[int, int] = (340, 300)) -> QImage:
    """The reliability diagram as a QImage (matplotlib Agg; no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.16, 0.15, 0.79, 0.75))
    axes.plot([0, 100], [0, 100], linestyle="--", color="#999999", linewidth=1, label="perfectly calibrated")
    if bins:
        x = [b.mean_confidence * 100 for b in bins]
        y = [b.accuracy * 100 for b in bins]
        axes.plot(x, y, marker="o", color="#c0392b", linewidth=1.8, label="your reads")
        for b, xi, yi in zip(bins, x, y):
            axes.annotate(f"n={b.count}", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=7.5,
                          color="#555555")
    else:
        axes.text(50, 50, "needs reads of images\nwith a known label", ha="center", va="center", fontsize=9,
                  color="#777777")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 105)
    axes.set_xlabel("your stated confidence (%)", fontsize=8.5)
    axes.set_ylabel("calls matching the known label (%)", fontsize=8.5)
    axes.set_title("Your calibration", fontsize=10)
    axes.tick_params(labelsize=8)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", fontsize=7.5, frameon=False)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba()).copy()
    image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.shape[1] * 4, QImage.Format.Format_RGBA8888)
    return image.copy()   # own the pixels: `rgba` goes out of scope


class MyReadsDialog(QDialog):
    """Table of the trainee's reads with agreement rates and a calibration curve.

    Double-clicking (or Enter on) a row asks to open its image (`open_requested`): reads hold the
    image's content hash only, so the viewer finds the file among the images it knows."""

    open_requested = Signal(str, int)    # image sha256, frame index
    packet_open_requested = Signal(object)   # PacketSummary: its score sheet (finished) or resume (paused)

    def __init__(self, store: ReadStore | None = None, records: Sequence[ReadRecord] | None = None,
                 parent: QWidget | None = None, packets_folder: str | Path | None = None) -> None:
        super().__init__(parent)
        self._packets_folder = Path(packets_folder) if packets_folder is not None else None
        self._packets: list[PacketSummary] = []
        self.setWindowTitle("My reads")
        self.setObjectName("myReadsDialog")
        self._store = store
        self._records: list[ReadRecord] = list(records) if records is not None else []
        self._shown_records: list[ReadRecord] = []

        self.summary_label = make.label(self, "readsSummary", wrap=True)
        tips = {5: "Your call agrees with the model's call (the card's threshold rule)", 7: "Your call matches the folder's known label",
                8: "Your marked point inside or outside the heat map's hot region"}
        self.table = make.table(self, "readsTable", COLUMNS, self._on_table_cell_activated, tips)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        self.calibration_label = make.label(self, "calibrationPlot")
        self.calibration_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.privacy_label = QLabel(
            "Stored on this computer only: an image is identified by a hash of its file, never by "
            "its name, path or patient details.", self)
        self.privacy_label.setWordWrap(True)
        set_tone(self.privacy_label, "muted")

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.calibration_label)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([750, 350])

        self.clear_button = make.button(self, "Delete all reads…", "clearReadsButton",
                                        clicked=self._on_clear_button_clicked)
        self.clear_button.setEnabled(store is not None)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.clear_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)

        reads_page = QWidget(self)
        reads_layout = QVBoxLayout(reads_page)
        reads_layout.setContentsMargins(6, 6, 6, 6)
        reads_layout.addWidget(self.summary_label)
        reads_layout.addWidget(splitter, 1)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("myReadsTabs")
        self.tabs.addTab(reads_page, "Reads")
        self.tabs.addTab(self._packets_page(), "Packets")

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.privacy_label)
        layout.addLayout(bottom)
        self.resize(1100, 520)
        self.refresh()

    def _packets_page(self) -> QWidget:
        """Tools › Practice Packet's packets: double-click a finished one for its score sheet, a paused one to resume."""
        page = QWidget(self)
        self.packets_label = make.label(page, "packetsSummary", wrap=True)
        self.packets_table = make.table(page, "packetsTable", PACKET_COLUMNS, self._on_packets_table_cell_activated,
                                        {2: "Cases called right (normal vs abnormal) of those read"})
        layout = QVBoxLayout(page)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.packets_label)
        layout.addWidget(self.packets_table, 1)
        return page

    def records(self) -> list[ReadRecord]:
        return list(self._records)

    def packets(self) -> list[PacketSummary]:
        """The rows of the Packets tab, as shown (the paused packet first, then newest first)."""
        return list(self._packets)

    def refresh_packets(self) -> None:
        self._packets = packet_summaries(self._packets_folder) if self._packets_folder is not None else []
        rows = self._packets
        finished = [row for row in rows if row.status != PAUSED]
        if not rows:
            text = "No practice packets yet: Tools › Practice Packet… draws a timed packet of labelled cases."
        else:
            text = (f"{len(finished)} finished packet{'s' if len(finished) != 1 else ''}"
                    + ("; one paused — double-click it to carry on" if len(finished) < len(rows) else "")
                    + ". Double-click a finished packet for its score sheet.")
        self.packets_label.setText(text)
        self.packets_table.setRowCount(len(rows))
        for row, summary in enumerate(rows):
            values = (summary.date_text, str(summary.n_cases), summary.score_text, summary.time_text,
                      summary.status_text)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column in (1, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.packets_table.setItem(row, column, item)

    def refresh(self) -> None:
        """Reload from the store (when there is one) and redraw everything."""
        if self._store is not None:
            self._records = self._store.records()
        records = self._records
        self.summary_label.setText("\n".join(summary_lines(records)))
        self.table.setRowCount(len(records))
        self._shown_records = list(reversed(records))
        for row, record in enumerate(self._shown_records):     # newest first
            decided = record.model_call        # the model's call (card threshold), as the panel showed it
            model = "—" if decided is None else f"{decided.label} {decided.label_probability * 100:.0f} %"
            point = "" if record.point is None else (
                "inside" if record.point_in_hot_region else
                "outside" if record.point_in_hot_region is not None else "marked")
            values = (
                record.created.replace("T", " ")[:16],
                record.image_sha256[:8],
                call_title(record.call),
                f"{record.confidence} %",
                model,
                FLAGGED_MARK if record.outside_training_data else _mark(record.agrees_with_model),
                record.known_label or "",
                _mark(record.agrees_with_known_label),
                point,
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 1:
                    item.setToolTip(f"SHA-256 of the image file: {record.image_sha256}")
                if column == 5 and record.outside_training_data:
                    item.setToolTip(FLAGGED_TIP)
                if column in (3, 5, 7):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        self.calibration_bins = calibration_curve(records, CALIBRATION_BINS)
        self.calibration_label.setPixmap(QPixmap.fromImage(calibration_image(self.calibration_bins)))
        self.refresh_packets()

    def _on_table_cell_activated(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._shown_records):
            record = self._shown_records[row]
            self.open_requested.emit(record.image_sha256, record.frame_index)

    def _on_packets_table_cell_activated(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._packets):
            self.packet_open_requested.emit(self._packets[row])

    def _on_clear_button_clicked(self) -> None:
        if self._store is None:
            return
        answer = QMessageBox.question(
            self, "Delete all reads", "Delete every stored read? This cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self._store.clear()
            self.refresh()
