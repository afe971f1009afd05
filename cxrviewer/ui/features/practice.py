"""Tools ▸ Practice Packet…: a timed rapid-reporting packet of labelled cases, read first, then scored.

`PracticeController` drives the window: turns Read First on for the packet, opens each case (a copy under a
neutral name, shown as "Practice case 3 of 12"; `practice_blinding` hides all else that could give the answer
away), takes the call the Read first panel records, asks for the next case, saves the state in the user data
folder after every change (a packet survives a restart and is offered for resuming), and shows the score sheet at
the end. Packet logic:
`teaching.practice`; the widgets (re-exported here): `practice_setup`, `practice_status` and `score_sheet`.

MainWindow creates one after its TraineeController and hands it the `Shell`, the viewer session, the canvas, the
settings, the read-first feature and the AI controller (never the window itself).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDialog, QMessageBox

from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import Prediction, XrayImage
from cxrviewer.state.session import ViewerSession
from cxrviewer.teaching.packet_history import PAUSED, PacketSummary, archive_packet
from cxrviewer.teaching.practice import (
    LAST_FILENAME,
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
    remove_staged,
    save_state,
    score_packet,
    stage_cases,
    state_path,
)
from cxrviewer.ui.dialogs.practice_setup import PacketSetupDialog
from cxrviewer.ui.dialogs.score_sheet import ScoreSheetDialog
from cxrviewer.ui.features.ai import AiController
from cxrviewer.ui.features.practice_blinding import PracticeBlinding
from cxrviewer.ui.features.read_first import ReadFirstFeature
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.shell.settings import ViewerSettings
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.widgets import make
from cxrviewer.ui.widgets.practice_status import PracticeStatus

if TYPE_CHECKING:
    from cxrviewer.teaching.reads import ReadCall

__all__ = ["PacketSetupDialog", "PracticeController", "PracticeStatus", "ScoreSheetDialog"]

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


# ============================================================================ controller

class PracticeController(QObject):
    """Runs practice packets in one window (see the module docstring)."""

    state_changed = Signal(object)     # PacketState | None
    case_shown = Signal(int)           # the case number now on screen
    finished = Signal(object)          # ScoreSheet

    def __init__(self, shell: Shell, viewer: ViewerSession, canvas: ImageCanvas, settings: ViewerSettings,
                 reading: ReadFirstFeature, ai: AiController, clock: Callable[[], float] = time.monotonic,
                 data_folder: str | Path | None = None) -> None:
        host = shell.host()
        super().__init__(host)
        self.setObjectName("practiceController")
        self.shell, self.viewer, self.canvas, self.settings, self.reading, self.ai = (
            shell, viewer, canvas, settings, reading, ai)
        self._host = host
        self.clock = clock   # the time source (tests replace it)
        self._data_folder = Path(data_folder) if data_folder is not None else None
        self._state: PacketState | None = None
        self._staged: dict[int, Path] = {}
        self._keys: dict[str, int] = {}                 # image key → case number
        self._model_labels: dict[str, tuple[str, str, bool]] = {}   # image key → (call, model, OOD flag)
        self._last_save = 0.0
        self.score_dialog: ScoreSheetDialog | None = None
        self.blinding = PracticeBlinding(host, viewer, canvas, ai.panel)   # names, corner text, tags, AI messages
        self.last_sheet: ScoreSheet | None = None

        self.action = make_action(host, "practice_packet", "Practice &Packet…", self.open_setup,
                                  "A timed packet of labelled cases, read first, then a score sheet")
        shell.add_menu_action("tools", self.action)
        self.next_action = make_action(host, "practice_next", "Next Practice Case", self.next_case, shortcut="Ctrl+Return")
        host.addAction(self.next_action)   # no menu entry; the shortcut works anywhere in the window

        self.status = PracticeStatus(host)
        self.status.hide()
        shell.add_status_widget(self.status, 0)
        self.status.pause_toggled.connect(self.set_paused)
        self.status.next_requested.connect(self.next_case)
        self.status.stop_requested.connect(self._on_status_stop_requested)

        self._timer = make.timer(self, self._on_timer_timeout, TICK_MS)

        viewer.image_changed.connect(self._on_viewer_image_changed)
        reading.call_recorded.connect(self._on_reading_call_recorded)
        read_first = reading.session   # the AI may show again, or the read was saved: keep it concealed
        read_first.ai_visibility_changed.connect(lambda visible: self._conceal() if visible else None)
        read_first.read_saved.connect(lambda _record: self._conceal())
        ai.prediction_shown.connect(self._on_ai_prediction_shown)
        ai.overlay_updated.connect(lambda _key: self._conceal())
        host.installEventFilter(self)
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
            self.shell.show_notice(str(exc))
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
        self._hide_case(paused)
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
            self.shell.show_notice("A practice packet is running: finish it or press Stop in the status bar.", False)
            return
        saved = self.saved_state()
        if saved is not None:
            box = QMessageBox(QMessageBox.Icon.Question, "Practice packet",
                              f"An unfinished packet from {saved.created[:16].replace('T', ' ')} "
                              f"({len(saved.results)} of {saved.n_cases} cases read). Resume it?",
                              parent=self._host)
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
        dialog = PacketSetupDialog(self.settings.last_folder(), self._host)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start(dialog.spec())

    def show_score_sheet(self, state: PacketState | None = None) -> ScoreSheetDialog | None:
        state = state or self._state
        if state is None:
            return None
        sheet = score_packet(state)
        dialog = ScoreSheetDialog(state, sheet, self._host)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open_requested.connect(self._on_score_open_requested)
        dialog.finished.connect(self._on_score_dialog_finished)
        dialog.open()
        self.score_dialog = dialog
        return dialog

    def open_packet(self, summary: PacketSummary) -> ScoreSheetDialog | PacketState | None:
        """From My Reads › Packets: a finished packet's score sheet, or carry on with the paused one."""
        if summary.status == PAUSED:
            if self.is_running():
                self.set_paused(False)
                return self._state
            return self.resume()
        try:
            state = load_state(summary.path)
        except PracticeError as exc:
            self.shell.show_notice(str(exc))
            return None
        return self.show_score_sheet(state) if state is not None else None

    # ============================================================ flow
    def _begin(self, state: PacketState) -> None:
        qsettings, action = self.settings.qsettings, self.reading.action
        if qsettings.value(READ_FIRST_BEFORE_KEY) is None:   # a resumed packet keeps the first value
            qsettings.setValue(READ_FIRST_BEFORE_KEY, action.isChecked())
        action.setChecked(True)                               # read first is enforced in a packet
        self._state = state
        self._staged = stage_cases(state, self.staging_folder())
        self.blinding.apply(state, self._staged, self.staging_folder())
        self._keys.clear()
        self._model_labels.clear()
        self.status.set_paused(False)
        self.status.show()
        self._timer.start()
        self._save()
        if state.note:
            self.shell.show_status(f"Practice packet: {state.note}", 10000)
        self._show_current()

    def _show_current(self) -> None:
        state = self._state
        case = state.current_case() if state is not None else None
        if case is None:
            return
        settings = self.settings
        recent, last_folder = settings.recent_files(), settings.last_folder()
        self.shell.open_paths([self._staged.get(case.number, Path(case.path))])
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
            archive_packet(state, self.data_folder())      # listed in My Reads › Packets
            clear_state(self.state_file())
        except PracticeError as exc:
            self.shell.show_notice(str(exc))
        remove_staged(state, self.staging_folder())
        self._staged = {}
        self.blinding.lift()
        self._hide_case(False)
        qsettings = self.settings.qsettings
        before = qsettings.value(READ_FIRST_BEFORE_KEY)
        qsettings.remove(READ_FIRST_BEFORE_KEY)
        if before is not None:
            self.reading.action.setChecked(str(before).lower() in {"true", "1"})
        self.status.hide()
        sheet = score_packet(state)
        self.last_sheet = sheet
        self.state_changed.emit(state)
        self.show_score_sheet(state)
        self.finished.emit(sheet)
        return sheet

    def _hide_case(self, hidden: bool) -> None:
        """A paused packet hides the image and disables the Read first panel."""
        self.canvas.setVisible(not hidden)
        self.reading.dock.setEnabled(not hidden)

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
            self.shell.show_notice(str(exc))
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

    def _model_label_now(self) -> tuple[str, str, bool] | None:
        image = self.viewer.image
        if image is None:
            return None
        key = image_key(image)
        if key in self._model_labels:
            return self._model_labels[key]
        prediction = self.ai.current_prediction()
        if prediction is not None and prediction.image_key == key:
            return self._remember_prediction(prediction)
        return None

    def _remember_prediction(self, prediction: Prediction) -> tuple[str, str, bool] | None:
        model = self.ai.current_model()
        label = _model_call_label(prediction, model.card if model is not None else None)
        if label is None:
            return None
        entry = (label, prediction.model_name, prediction.outside_training_data)
        self._model_labels[prediction.image_key] = entry
        return entry

    def _reveal_at_end(self) -> bool:
        return self.is_running() and self._state.spec.reveal == REVEAL_END   # type: ignore[union-attr]

    def _conceal(self) -> None:
        """Reveal at the end: keep the AI result out of sight after the call too."""
        if self._reveal_at_end():
            self.ai.set_results_hidden(True)
            self.reading.conceal_comparison()

    def _maybe_auto_advance(self) -> None:
        """Reveal at the end: on to the next case as soon as the call and the model's call are in."""
        state = self._state
        if not self._reveal_at_end() or state is None:
            return
        result = state.current_result()
        if result is not None and (result.model_label is not None or self.ai.current_model() is None):
            QTimer.singleShot(0, self, self.next_case)

    def _offer_resume(self) -> None:
        if self._state is not None:
            return
        saved = self.saved_state()
        if saved is not None:
            self.shell.show_notice(f"An unfinished practice packet ({len(saved.results)} of {saved.n_cases} cases read) "
                         "is waiting: Tools ▸ Practice Packet… resumes it.", problem=False)

    # ============================================================ events and slots
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._host and event.type() == QEvent.Type.Close and self.is_running():
            self._save()   # saved paused: the time the viewer is closed does not count
        return False

    def _on_status_stop_requested(self) -> None:
        answer = QMessageBox.question(self._host, "Stop the packet",
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

    def _on_viewer_image_changed(self, image: XrayImage | None) -> None:
        number = self._current_number_for(image)
        if number is None or image is None:
            return
        self._keys[image_key(image)] = number
        self.case_shown.emit(number)
        self._update_status()

    def _on_reading_call_recorded(self, call: ReadCall) -> None:
        state = self._state
        if state is None or state.finished or not state.clock.running:
            return
        if self._current_number_for(self.viewer.image) is None:
            return   # the trainee opened something else meanwhile: not a packet read
        model = self._model_label_now()
        label, name, flagged = model if model else (None, "", False)
        self._state = state.with_call(call.call, call.confidence, self.clock(), label, name, flagged)
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

    def _on_score_open_requested(self, path: Path) -> None:
        self.shell.open_paths([path])

    def _on_score_dialog_finished(self, _result: int) -> None:
        if self.sender() is self.score_dialog:
            self.score_dialog = None
