"""Tools ▸ Practice Packet…: the setup dialog — the labelled source (a class folder, Kermany file names
or a manifest CSV), the number of cases, balance, time limit (or untimed), and whether the AI is shown
after each case or only at the end; the seed is recorded (0 draws one)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.teaching.practice import (
    DEFAULT_CASES,
    DEFAULT_MINUTES,
    REVEAL_EACH,
    REVEAL_END,
    PacketSpec,
    PracticeError,
    labelled_images,
    pool_counts,
    random_seed,
)
from cxrviewer.ui.widgets import make


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
        # wide enough for the whole hint (and so for a typical path), not squeezed by the two buttons
        self.source_edit.setMinimumWidth(self.source_edit.fontMetrics().horizontalAdvance(
            self.source_edit.placeholderText()) + 24)
        self.source_edit.editingFinished.connect(self._on_source_edit_editing_finished)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_edit, 1)
        source_row.addWidget(make.button(self, "Folder…", "practiceFolder", clicked=self._on_folder_button_clicked))
        source_row.addWidget(make.button(self, "Manifest CSV…", "practiceCsv", clicked=self._on_csv_button_clicked))
        self.pool_label = make.label(self, "practicePool",
                                     "Choose a labelled folder or a manifest CSV (columns path,label).", wrap=True)

        self.cases_spin = make.spin(self, "practiceCases", 1, 500, DEFAULT_CASES)
        self.balanced_check = make.check(self, "Half normal, half abnormal", "practiceBalanced", checked=True)
        self.timed_check = make.check(self, "Time limit", "practiceTimed", checked=True)
        self.minutes_spin = make.spin(self, "practiceMinutes", 1, 600, DEFAULT_MINUTES)
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
        self.seed_spin = make.spin(self, "practiceSeed", 0, 2**31 - 1, 0,
                                   "The same seed and source give the same cases in the same order")
        self.seed_spin.setSpecialValueText("random")

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
