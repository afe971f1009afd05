"""Tools ▸ Practice Packet…: a timed rapid-reporting packet of labelled cases, read first, then scored.

* `PacketSetupDialog` — the labelled source (a class folder or a manifest CSV), the number of
  cases, balance, time limit (or untimed), and whether the AI is shown after each case or
  only at the end; the seed is recorded (0 draws one).
* `PracticeStatus` — the status-bar widget: "Packet 7/30 · 12:31 left", Pause/Resume, Next
  case, Stop.
* `ScoreSheetDialog` — accuracy, sensitivity, specificity, agreement with the model's call,
  the discordant cases (click one to open it), time per case and calibration; CSV and PDF.
* `PracticeController` — drives the window: turns Read First on for the packet, opens each
  case (a copy under a neutral name, so the file and folder names do not give the answer),
  takes the call the Read first panel records, asks for the next case, keeps the state in the
  user data folder after every change (a packet survives a restart and is offered for
  resuming), and shows the score sheet at the end. All packet logic is in `teaching.practice`.

MainWindow creates one `PracticeController(window)` after its TraineeController.
"""
from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.core.errors import CxrError
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import Prediction, XrayImage
from cxrviewer.teaching.practice import (
    DEFAULT_CASES,
    DEFAULT_MINUTES,
    LAST_FILENAME,
    REVEAL_EACH,
    REVEAL_END,
    STAGING_DIRNAME,
    PacketSpec,
    PacketState,
    PracticeError,
    ScoreSheet,
    clear_state,
    labelled_images,
    load_state,
    new_packet,
    percent,
    pool_counts,
    random_seed,
    remove_staged,
    save_state,
    score_packet,
    stage_cases,
    state_path,
    summary_lines,
    write_score_csv,
    write_score_pdf,
)

if TYPE_CHECKING:
    from cxrviewer.teaching.reads import ReadCall
    from cxrviewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

TICK_MS = 500
AUTOSAVE_S = 15.0
READ_FIRST_BEFORE_KEY = "practice/read_first_before"


def _model_call_label(prediction: Prediction, card: object | None) -> str | None:
    """The model's call (operating threshold of its card): `core.model_call`."""
    from cxrviewer.core.model_call import call_for

    try:
        return call_for(prediction, card).label   # type: ignore[arg-type]
    except ValueError as exc:
        log.warning("no model call for %s: %s", prediction.image_key, exc)
        return None


# ============================================================================ setup

class PacketSetupDialog(QDialog):
    """The packet's source and settings; `spec()` once accepted."""

    def __init__(self, start_folder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practiceSetupDialog")
        self.setWindowTitle("Practice packet")
        self._pool_size = 0
        self._start_folder = start_folder

        self.source_edit = QLineEdit(self)
        self.source_edit.setObjectName("practiceSource")
        self.source_edit.setPlaceholderText("A folder of class folders (NORMAL/, PNEUMONIA/…) or a manifest CSV")
        self.source_edit.editingFinished.connect(self._on_source_edit_editing_finished)
        folder_button = QPushButton("Folder…", self)
        folder_button.clicked.connect(self._on_folder_button_clicked)
        csv_button = QPushButton("Manifest CSV…", self)
        csv_button.clicked.connect(self._on_csv_button_clicked)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_edit, 1)
        source_row.addWidget(folder_button)
        source_row.addWidget(csv_button)
        self.pool_label = QLabel("Choose a labelled folder or a manifest CSV (columns path,label).", self)
        self.pool_label.setObjectName("practicePool")
        self.pool_label.setWordWrap(True)

        self.cases_spin = QSpinBox(self)
        self.cases_spin.setObjectName("practiceCases")
        self.cases_spin.setRange(1, 500)
        self.cases_spin.setValue(DEFAULT_CASES)
        self.balanced_check = QCheckBox("Half normal, half abnormal", self)
        self.balanced_check.setObjectName("practiceBalanced")
        self.balanced_check.setChecked(True)
        self.timed_check = QCheckBox("Time limit", self)
        self.timed_check.setObjectName("practiceTimed")
        self.timed_check.setChecked(True)
        self.minutes_spin = QSpinBox(self)
        self.minutes_spin.setObjectName("practiceMinutes")
        self.minutes_spin.setRange(1, 600)
        self.minutes_spin.setValue(DEFAULT_MINUTES)
        self.minutes_spin.setSuffix(" min")
        self.timed_check.toggled.connect(self.minutes_spin.setEnabled)
        time_row = QHBoxLayout()
        time_row.addWidget(self.timed_check)
        time_row.addWidget(self.minutes_spin)
        time_row.addStretch(1)
        self.reveal_combo = QComboBox(self)
        self.reveal_combo.setObjectName("practiceReveal")
        self.reveal_combo.addItem("After each case", REVEAL_EACH)
        self.reveal_combo.addItem("Only at the end (score sheet)", REVEAL_END)
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setObjectName("practiceSeed")
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setSpecialValueText("random")
        self.seed_spin.setToolTip("The same seed and source give the same cases in the same order")

        form = QFormLayout()
        form.addRow("Cases", self.cases_spin)
        form.addRow("Balance", self.balanced_check)
        form.addRow("Time", time_row)
        form.addRow("Show the AI", self.reveal_combo)
        form.addRow("Seed", self.seed_spin)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start packet")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        intro = QLabel("Cases are shown in random order with Read First on: record your call before the "
                       "AI result is shown. File and folder names are hidden while you read.", self)
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(source_row)
        layout.addWidget(self.pool_label)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self._update_ok()

    def set_source(self, source: str | Path) -> None:
        self.source_edit.setText(str(source))
        self._update_pool()

    def pool_size(self) -> int:
        return self._pool_size

    def spec(self) -> PacketSpec:
        seed = self.seed_spin.value() or random_seed()
        return PacketSpec(
            source=self.source_edit.text().strip(), n_cases=self.cases_spin.value(),
            balanced=self.balanced_check.isChecked(),
            time_limit_s=self.minutes_spin.value() * 60.0 if self.timed_check.isChecked() else None,
            reveal=str(self.reveal_combo.currentData()), seed=seed,
        )

    def _update_pool(self) -> None:
        source = self.source_edit.text().strip()
        self._pool_size = 0
        if source:
            try:
                pool = labelled_images(source)
            except PracticeError as exc:
                self.pool_label.setText(str(exc))
            else:
                normal, abnormal = pool_counts(pool)
                self._pool_size = len(pool)
                self.pool_label.setText(f"{len(pool)} labelled images: {normal} normal, {abnormal} abnormal."
                                        if pool else "No labelled images here.")
        self._update_ok()

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self._pool_size > 0)

    def _on_source_edit_editing_finished(self) -> None:
        self._update_pool()

    def _on_folder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder", self._start_folder)
        if folder:
            self.set_source(folder)

    def _on_csv_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Manifest CSV (path,label)", self._start_folder,
                                              "CSV (*.csv);;All files (*)")
        if path:
            self.set_source(path)


# ============================================================================ status bar

class PracticeStatus(QWidget):
    """Progress and time in the status bar, with Pause/Resume, Next case and Stop."""

    pause_toggled = Signal(bool)
    next_requested = Signal()
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("practiceStatus")
        self.label = QLabel(self)
        self.label.setObjectName("practiceProgress")
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setObjectName("practicePause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._on_pause_button_toggled)
        self.next_button = QPushButton("Next case ▶", self)
        self.next_button.setObjectName("practiceNext")
        self.next_button.setToolTip("Record your call first (Ctrl+Return)")
        self.next_button.clicked.connect(self.next_requested)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("practiceStop")
        self.stop_button.setToolTip("End the packet now and score the cases read")
        self.stop_button.clicked.connect(self.stop_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(4)
        layout.addWidget(self.label)
        for button in (self.pause_button, self.next_button, self.stop_button):
            button.setFlat(False)
            button.setMaximumHeight(22)
            layout.addWidget(button)

    def text(self) -> str:
        return self.label.text()

    def set_paused(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.blockSignals(False)

    def _on_pause_button_toggled(self, checked: bool) -> None:
        self.pause_button.setText("Resume" if checked else "Pause")
        self.pause_toggled.emit(checked)


# ============================================================================ score sheet

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
                      (result.model_label or "—") if result else "", mark, Path(case.path).name)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, case.path)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(self._on_table_cell_double_clicked)

        self.csv_button = QPushButton("Export CSV…", self)
        self.csv_button.setObjectName("practiceExportCsv")
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        self.pdf_button = QPushButton("Export PDF…", self)
        self.pdf_button.setObjectName("practiceExportPdf")
        self.pdf_button.clicked.connect(self._on_pdf_button_clicked)
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
        path = path or self._ask_path("CSV (*.csv)", "csv")
        if not path:
            return None
        try:
            return write_score_csv(self.sheet, path)
        except CxrError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None

    def export_pdf(self, path: str | Path | None = None) -> Path | None:
        path = path or self._ask_path("PDF (*.pdf)", "pdf")
        if not path:
            return None
        try:
            return write_score_pdf(self.state, self.sheet, path)
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


# ============================================================================ controller

class PracticeController(QObject):
    """Runs practice packets in one MainWindow (see the module docstring)."""

    state_changed = Signal(object)     # PacketState | None
    case_shown = Signal(int)           # the case number now on screen
    finished = Signal(object)          # ScoreSheet

    def __init__(self, window: MainWindow, clock: Callable[[], float] = time.monotonic,
                 data_folder: str | Path | None = None) -> None:
        super().__init__(window)
        self.setObjectName("practiceController")
        self.window = window
        self.clock = clock   # the time source (tests replace it)
        self._data_folder = Path(data_folder) if data_folder is not None else None
        self._state: PacketState | None = None
        self._staged: dict[int, Path] = {}
        self._keys: dict[str, int] = {}                 # image key → case number
        self._model_labels: dict[str, tuple[str, str]] = {}   # image key → (model call, model name)
        self._last_save = 0.0
        self.score_dialog: ScoreSheetDialog | None = None
        self.last_sheet: ScoreSheet | None = None

        self.action = QAction("Practice &Packet…", window)
        self.action.setObjectName("action_practice_packet")
        self.action.setStatusTip("A timed packet of labelled cases, read first, then a score sheet")
        self.action.triggered.connect(self._on_action_triggered)
        window.addAction(self.action)
        window.menu("tools").addAction(self.action)
        self.next_action = QAction("Next Practice Case", window)
        self.next_action.setObjectName("action_practice_next")
        self.next_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.next_action.triggered.connect(self.next_case)
        window.addAction(self.next_action)

        self.status = PracticeStatus(window)
        self.status.hide()
        window.statusBar().insertPermanentWidget(0, self.status)
        self.status.pause_toggled.connect(self.set_paused)
        self.status.next_requested.connect(self.next_case)
        self.status.stop_requested.connect(self._on_status_stop_requested)

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

        trainee = window.trainee
        window.image_changed.connect(self._on_window_image_changed)
        trainee.read_first_panel.call_recorded.connect(self._on_panel_call_recorded)
        trainee.read_first.ai_visibility_changed.connect(self._on_read_first_ai_visibility_changed)
        trainee.read_first.read_saved.connect(self._on_read_first_read_saved)
        window.ai.prediction_shown.connect(self._on_ai_prediction_shown)
        window.ai.overlay_updated.connect(self._on_ai_overlay_updated)
        window.installEventFilter(self)
        QTimer.singleShot(0, self, self._offer_resume)
        self._update_status()

    # ============================================================ paths
    def data_folder(self) -> Path:
        if self._data_folder is not None:
            return self._data_folder
        from cxrviewer.teaching.reads import data_dir

        return data_dir()

    def state_file(self) -> Path:
        return state_path(self.data_folder())

    def staging_folder(self) -> Path:
        return self.data_folder() / STAGING_DIRNAME

    # ============================================================ public API
    def state(self) -> PacketState | None:
        return self._state

    def is_running(self) -> bool:
        return self._state is not None and not self._state.finished

    def is_paused(self) -> bool:
        return self.is_running() and not self._state.clock.running   # type: ignore[union-attr]

    def status_text(self) -> str:
        return self.status.text()

    def staged_path(self, number: int) -> Path | None:
        return self._staged.get(number)

    def saved_state(self) -> PacketState | None:
        """The unfinished packet saved in the data folder (None when there is none or it is unreadable)."""
        try:
            state = load_state(self.state_file())
        except PracticeError as exc:
            log.warning("%s", exc)
            return None
        return state if state is not None and not state.finished else None

    def start(self, spec: PacketSpec) -> PacketState | None:
        """Draw a packet from `spec.source` and show its first case."""
        try:
            state = new_packet(spec, labelled_images(spec.source))
        except PracticeError as exc:
            self._notice(str(exc))
            return None
        self._begin(state.started(self.clock()))
        return self._state

    def resume(self) -> PacketState | None:
        """Carry on with the saved unfinished packet (from the case where it stopped)."""
        state = self.saved_state()
        if state is None:
            return None
        now = self.clock()
        state = state.started(now)
        if state.current_result() is not None:   # the call was in; the next case was not shown yet
            state = state.advanced(now)
        self._begin(state)
        return self._state

    def next_case(self) -> None:
        """On to the next case once the call on this one is recorded; the score sheet after the last."""
        state = self._state
        if state is None or state.finished or state.current_result() is None:
            return
        if not state.clock.running:
            self.set_paused(False)
            state = self._state
        self._state = state.advanced(self.clock())
        if self._state.finished:
            self._finish()
        else:
            self._save()
            self._show_current()

    def set_paused(self, paused: bool) -> None:
        """Pause: the clock stops and the image and the Read first panel are hidden; resume brings them back."""
        state = self._state
        if state is None or state.finished:
            return
        now = self.clock()
        self._state = state.paused(now) if paused else state.started(now)
        self.window.canvas.setVisible(not paused)
        self.window.trainee.read_first_dock.setEnabled(not paused)
        self.status.set_paused(paused)
        self._save()
        self._update_status()

    def stop(self) -> ScoreSheet | None:
        """End the packet now; the cases read are scored."""
        if not self.is_running():
            return None
        self._state = self._state.finished_now(self.clock(), "stopped")   # type: ignore[union-attr]
        return self._finish()

    def open_setup(self) -> None:
        """Tools ▸ Practice Packet…: offer to resume a saved packet, else the setup dialog."""
        if self.is_running():
            self._notice("A practice packet is running: finish it or press Stop in the status bar.", False)
            return
        saved = self.saved_state()
        if saved is not None:
            box = QMessageBox(QMessageBox.Icon.Question, "Practice packet",
                              f"An unfinished packet from {saved.created[:16].replace('T', ' ')} "
                              f"({len(saved.results)} of {saved.n_cases} cases read). Resume it?",
                              parent=self.window)
            resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
            new = box.addButton("Start a new packet", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is resume:
                self.resume()
                return
            if box.clickedButton() is not new:
                return
            remove_staged(saved, self.staging_folder())
            clear_state(self.state_file())
        dialog = PacketSetupDialog(self.window.settings.last_folder(), self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start(dialog.spec())

    def show_score_sheet(self, state: PacketState | None = None) -> ScoreSheetDialog | None:
        state = state or self._state
        if state is None:
            return None
        sheet = score_packet(state)
        dialog = ScoreSheetDialog(state, sheet, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open_requested.connect(self._on_score_open_requested)
        dialog.finished.connect(self._on_score_dialog_finished)
        dialog.open()
        self.score_dialog = dialog
        return dialog

    # ============================================================ flow
    def _begin(self, state: PacketState) -> None:
        qsettings = self.window.settings.qsettings
        action = self.window.trainee.read_first_action
        if qsettings.value(READ_FIRST_BEFORE_KEY) is None:   # a resumed packet keeps the first value
            qsettings.setValue(READ_FIRST_BEFORE_KEY, action.isChecked())
        action.setChecked(True)                               # read first is enforced in a packet
        self._state = state
        self._staged = stage_cases(state, self.staging_folder())
        self._keys.clear()
        self._model_labels.clear()
        self.status.set_paused(False)
        self.status.show()
        self._timer.start()
        self._save()
        if state.note:
            self.window.statusBar().showMessage(f"Practice packet: {state.note}", 10000)
        self._show_current()

    def _show_current(self) -> None:
        state = self._state
        case = state.current_case() if state is not None else None
        if case is None:
            return
        settings = self.window.settings
        recent, last_folder = settings.recent_files(), settings.last_folder()
        self.window.open_paths([self._staged.get(case.number, Path(case.path))])
        # the temporary copies stay out of File ▸ Open Recent and the open dialogs' folder
        settings.clear_recent_files()
        for path in reversed(recent):
            settings.add_recent_file(path)
        if last_folder:
            settings.set_last_folder(last_folder)
        self._update_status()

    def _finish(self) -> ScoreSheet:
        state = self._state
        assert state is not None
        self._timer.stop()
        try:
            save_state(state, self.data_folder() / LAST_FILENAME)
            clear_state(self.state_file())
        except PracticeError as exc:
            self._notice(str(exc))
        remove_staged(state, self.staging_folder())
        self._staged = {}
        self.window.canvas.setVisible(True)
        self.window.trainee.read_first_dock.setEnabled(True)
        qsettings = self.window.settings.qsettings
        before = qsettings.value(READ_FIRST_BEFORE_KEY)
        qsettings.remove(READ_FIRST_BEFORE_KEY)
        if before is not None:
            self.window.trainee.read_first_action.setChecked(str(before).lower() in {"true", "1"})
        self.status.hide()
        sheet = score_packet(state)
        self.last_sheet = sheet
        self.state_changed.emit(state)
        self.show_score_sheet(state)
        self.finished.emit(sheet)
        return sheet

    def _save(self, force: bool = True) -> None:
        state = self._state
        if state is None or state.finished:
            return
        now = self.clock()
        if not force and now - self._last_save < AUTOSAVE_S:
            return
        self._last_save = now
        try:
            save_state(state, self.state_file(), now=now)
        except PracticeError as exc:
            self._notice(str(exc))
        self.state_changed.emit(state)

    def _update_status(self) -> None:
        state = self._state
        if state is None or state.finished:
            self.status.label.setText("")
            return
        self.status.label.setText(state.progress_text(self.clock()))
        ready = state.current_result() is not None
        self.status.next_button.setEnabled(ready)
        last = state.current + 1 >= state.n_cases
        self.status.next_button.setText("Score sheet ▶" if ready and last else "Next case ▶")

    def _current_number_for(self, image: XrayImage | None) -> int | None:
        state = self._state
        case = state.current_case() if state is not None else None
        if image is None or case is None:
            return None
        staged = self._staged.get(case.number, Path(case.path))
        try:
            same = Path(image.path).resolve() == staged.resolve()
        except OSError:
            same = False
        return case.number if same else None

    def _model_label_now(self) -> tuple[str, str] | None:
        image = self.window.current_image()
        if image is None:
            return None
        key = image_key(image)
        if key in self._model_labels:
            return self._model_labels[key]
        prediction = self.window.ai.current_prediction()
        if prediction is not None and prediction.image_key == key:
            return self._remember_prediction(prediction)
        return None

    def _remember_prediction(self, prediction: Prediction) -> tuple[str, str] | None:
        model = self.window.ai.current_model()
        label = _model_call_label(prediction, model.card if model is not None else None)
        if label is None:
            return None
        entry = (label, prediction.model_name)
        self._model_labels[prediction.image_key] = entry
        return entry

    def _reveal_at_end(self) -> bool:
        return self.is_running() and self._state.spec.reveal == REVEAL_END   # type: ignore[union-attr]

    def _conceal(self) -> None:
        """Reveal at the end: keep the AI result out of sight after the call too."""
        if self._reveal_at_end():
            self.window.ai.set_results_hidden(True)
            self.window.trainee.read_first_panel.result_frame.hide()

    def _maybe_auto_advance(self) -> None:
        """Reveal at the end: on to the next case as soon as the call and the model's call are in."""
        state = self._state
        if not self._reveal_at_end() or state is None:
            return
        result = state.current_result()
        if result is not None and (result.model_label is not None or self.window.ai.current_model() is None):
            QTimer.singleShot(0, self, self.next_case)

    def _notice(self, message: str, problem: bool = True) -> None:
        self.window.notice.show_notice(message, problem=problem)
        self.window.statusBar().showMessage(message, 10000)

    def _offer_resume(self) -> None:
        if self._state is not None:
            return
        saved = self.saved_state()
        if saved is not None:
            self._notice(f"An unfinished practice packet ({len(saved.results)} of {saved.n_cases} cases read) "
                         "is waiting: Tools ▸ Practice Packet… resumes it.", problem=False)

    # ============================================================ events and slots
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close and self.is_running():
            self._save()   # saved paused: the time the viewer is closed does not count
        return False

    def _on_action_triggered(self) -> None:
        self.open_setup()

    def _on_status_stop_requested(self) -> None:
        answer = QMessageBox.question(self.window, "Stop the packet",
                                      "End the packet now and score the cases read so far?")
        if answer == QMessageBox.StandardButton.Yes:
            self.stop()

    def _on_timer_timeout(self) -> None:
        state = self._state
        if state is None or state.finished:
            self._timer.stop()
            return
        now = self.clock()
        if state.timed_out(now):
            self._state = state.finished_now(now, "time")
            self._finish()
            return
        self._update_status()
        self._save(force=False)

    def _on_window_image_changed(self, image: XrayImage | None) -> None:
        number = self._current_number_for(image)
        if number is None or image is None:
            return
        self._keys[image_key(image)] = number
        self.case_shown.emit(number)
        self._update_status()

    def _on_panel_call_recorded(self, call: ReadCall) -> None:
        state = self._state
        if state is None or state.finished or not state.clock.running:
            return
        if self._current_number_for(self.window.current_image()) is None:
            return   # the trainee opened something else meanwhile: not a packet read
        model = self._model_label_now()
        self._state = state.with_call(call.call, call.confidence, self.clock(),
                                      model_label=model[0] if model else None,
                                      model_name=model[1] if model else "")
        self._save()
        self._update_status()
        self._conceal()
        self._maybe_auto_advance()

    def _on_ai_prediction_shown(self, prediction: Prediction) -> None:
        number = self._keys.get(prediction.image_key)
        if number is None or self._state is None:
            return
        entry = self._remember_prediction(prediction)
        result = self._state.result_for(number)
        if entry is not None and result is not None and result.model_label is None:
            self._state = self._state.with_model_label(number, *entry)
            self._save()
            self._maybe_auto_advance()
        self._conceal()

    def _on_ai_overlay_updated(self, _key: str) -> None:
        self._conceal()

    def _on_read_first_ai_visibility_changed(self, visible: bool) -> None:
        if visible:
            self._conceal()

    def _on_read_first_read_saved(self, _record: object) -> None:
        self._conceal()

    def _on_score_open_requested(self, path: Path) -> None:
        self.window.open_paths([path])

    def _on_score_dialog_finished(self, _result: int) -> None:
        if self.sender() is self.score_dialog:
            self.score_dialog = None


__all__ = ["PacketSetupDialog", "PracticeController", "PracticeStatus", "ScoreSheetDialog"]
