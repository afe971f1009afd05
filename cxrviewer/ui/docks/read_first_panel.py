"""Read-first mode's panel: the trainee commits to a call before the AI result and heat map are shown.

The read's state lives in `state.read_first.ReadFirstFlow` (an Enum state machine); this
panel renders it and sends the trainee's intents to it. `ReadFirstPanel` shows call buttons
(the loaded model's classes + Other), a confidence slider that must be set before recording,
a "Mark region" toggle and "Record call and reveal"; after the reveal, the trainee's call
beside the model's CALL (`core.model_call`: the same rule as the AI panel), whether they
agree, whether the marked point lies in the hot region (`teaching.reads.HOT_REGION_RULE`),
and the folder's known label when there is one.

Also here: `read_first_enabled` / `make_read_first_action` (the on-by-default setting and
its toggle) and `make_read_first_dock`. The window glue is `ui.read_first_session`.
"""
from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QFont, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDockWidget,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.state.read_first import ReadFirstFlow, ReadState
from cxrviewer.teaching.reads import HOT_MASS_SHARE, ReadCall, RevealComparison, call_title
from cxrviewer.ui.shell.theme import set_tone
from cxrviewer.ui.widgets.probability_bars import ProbabilityBars

READ_FIRST_SETTING = "ai/read_first"
WAITING_TEXT = "Call recorded. Waiting for the model…"


# ================================================================== setting and action

def read_first_enabled(settings: QSettings) -> bool:
    """On by default: a new user reads first."""
    value = settings.value(READ_FIRST_SETTING)
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def set_read_first_enabled(settings: QSettings, enabled: bool) -> None:
    settings.setValue(READ_FIRST_SETTING, bool(enabled))


def make_read_first_action(parent: QObject, settings: QSettings) -> QAction:
    """A checkable "Read First" action initialised from, and saving to, `settings`."""
    action = QAction("Read &First (hide the AI until I call)", parent)
    action.setObjectName("action_read_first")
    action.setCheckable(True)
    action.setChecked(read_first_enabled(settings))
    action.setStatusTip("Record your own call before the AI result and heat map are shown")
    action.toggled.connect(lambda checked: set_read_first_enabled(settings, checked))
    return action


# ================================================================== the panel

def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
    return label


def _rich_label(name: str, parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _verdict(ok: bool | None, yes: str, no: str, unknown: str) -> str:
    if ok is None:
        return unknown
    text = html.escape(yes if ok else no)
    return f"<span style='color:#1e8449'>✔ {text}</span>" if ok else f"<span style='color:#c0392b'>✘ {text}</span>"


def call_keys(calls: tuple[str, ...]) -> dict[str, str]:
    """One letter per call, the first of its title not yet taken ("Normal" N, "Bacterial" B, "Viral" V,
    "Other" O, "COVID-19" C)."""
    keys: dict[str, str] = {}
    for call in calls:
        letters = [ch for ch in call_title(call).upper() if ch.isalpha()] + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        keys[call] = next(ch for ch in letters if ch not in keys.values())
    return keys


def point_text(comparison: RevealComparison) -> str:
    """Whether the marked point lies in the hot region, with the rule that says what "hot" is."""
    if comparison.call.point is None:
        return "No region marked."
    if comparison.point_heat is None:
        return "Region marked; the heat map for it is not available yet."
    if comparison.hot_area is not None:
        region = (f"the hot region is the smallest part of the image holding "
                  f"{HOT_MASS_SHARE * 100:.0f} % of the map's heat — here {comparison.hot_area * 100:.0f} % "
                  f"of the image, where the map is ≥ {comparison.hot_threshold:.2f}")
    else:
        region = f"the hot region is where the map is ≥ {comparison.hot_threshold:.2f}"
    return _verdict(
        comparison.point_in_hot_region,
        f"Your marked point is inside the hot region (map {comparison.point_heat:.2f}; {region}).",
        f"Your marked point is outside the hot region (map {comparison.point_heat:.2f}; {region}).", "")


class ReadFirstPanel(QWidget):
    """The trainee's call, confidence and point; then the reveal comparison (renders a `ReadFirstFlow`)."""

    call_recorded = Signal(object)      # ReadCall
    reveal_requested = Signal()
    point_requested = Signal(bool)      # True: the next canvas click marks the region

    def __init__(self, parent: QWidget | None = None, flow: ReadFirstFlow | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readFirstPanel")
        self.flow = flow if flow is not None else ReadFirstFlow()
        self._message = ""
        self.intro = QLabel("Make your call before the AI result and heat map are shown.", self)
        self.intro.setWordWrap(True)
        self.setStyleSheet(
            "QPushButton[callButton=\"true\"]:checked { background: #2d6cdf; color: white; font-weight: bold;"
            " border: 1px solid #1d4fa8; border-radius: 3px; }"
            "QPushButton[callButton=\"true\"]:checked:disabled { background: #7d9fd9; color: #f4f7fd; }"
        )
        self.call_group = QButtonGroup(self)
        self.call_group.setExclusive(True)
        self.call_buttons: dict[str, QPushButton] = {}
        self.call_keys: dict[str, str] = {}
        self._calls_layout = QGridLayout()
        self._calls_layout.setSpacing(4)
        self.call_group.idToggled.connect(self._on_call_group_id_toggled)

        self.confidence_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.confidence_slider.setObjectName("confidenceSlider")
        self.confidence_slider.setRange(0, 100)
        self.confidence_slider.setSingleStep(5)
        self.confidence_slider.setPageStep(10)
        self.confidence_slider.setValue(50)
        self.confidence_slider.setToolTip("How sure are you of your call? 0 = guess, 100 = certain. "
                                          "Set it before recording (click, drag or use the arrow keys).")
        self.confidence_slider.setAccessibleName("Confidence")
        self.confidence_value = QLabel(self)
        self.confidence_value.setObjectName("confidenceValue")
        self.confidence_value.setMinimumWidth(60)
        self.confidence_slider.valueChanged.connect(self._on_confidence_slider_value_changed)
        self.confidence_slider.actionTriggered.connect(self._on_confidence_slider_touched)
        self.confidence_slider.sliderPressed.connect(self._on_confidence_slider_touched)
        self.confidence_slider.installEventFilter(self)

        self.mark_button = QPushButton("Mark region of concern", self)
        self.mark_button.setObjectName("markRegionButton")
        self.mark_button.setCheckable(True)
        self.mark_button.setToolTip("Then click the image where you see the abnormality (optional)")
        self.mark_button.toggled.connect(self._on_mark_button_toggled)
        self.clear_point_button = QPushButton("Clear", self)
        self.clear_point_button.setObjectName("clearPointButton")
        self.clear_point_button.clicked.connect(self.clear_marked_point)
        self.point_label = QLabel(self)
        self.point_label.setObjectName("markedPointLabel")

        self.reveal_button = QPushButton("Record call and reveal AI", self)
        self.reveal_button.setObjectName("revealButton")
        self.reveal_button.setMinimumHeight(32)
        self.reveal_button.clicked.connect(self._on_reveal_button_clicked)
        self.reveal_button.installEventFilter(self)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("readFirstStatus")
        self.status_label.setWordWrap(True)

        # after the reveal
        self.result_frame = QFrame(self)
        self.result_frame.setObjectName("revealFrame")
        self.result_frame.setFrameShape(QFrame.Shape.StyledPanel)
        self.comparison_label = _rich_label("comparisonLabel", self.result_frame)
        self.probability_bars = ProbabilityBars(self.result_frame)
        self.probability_bars.setObjectName("readFirstProbabilities")
        self.point_result_label = _rich_label("pointResultLabel", self.result_frame)
        self.known_label_label = _rich_label("knownLabelLabel", self.result_frame)
        result_layout = QVBoxLayout(self.result_frame)
        result_layout.addWidget(_heading("Your call vs the model", self.result_frame))
        for widget in (self.comparison_label, self.probability_bars, self.point_result_label, self.known_label_label):
            result_layout.addWidget(widget)

        confidence_row = QHBoxLayout()
        confidence_row.addWidget(self.confidence_slider, 1)
        confidence_row.addWidget(self.confidence_value)
        point_row = QHBoxLayout()
        point_row.addWidget(self.mark_button, 1)
        point_row.addWidget(self.clear_point_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(_heading("Your read", self))
        layout.addWidget(self.intro)
        layout.addLayout(self._calls_layout)
        layout.addWidget(QLabel("Confidence", self))
        layout.addLayout(confidence_row)
        layout.addLayout(point_row)
        layout.addWidget(self.point_label)
        layout.addWidget(self.reveal_button)
        layout.addWidget(self.status_label)
        layout.addWidget(self.result_frame)
        layout.addStretch(1)

        self._build_call_buttons(self.flow.choices)
        self.flow.changed.connect(self._on_flow_changed)
        self.flow.choices_changed.connect(self._build_call_buttons)
        self.flow.revealed.connect(self._show_comparison)
        self.result_frame.hide()
        self._render()

    # ------------------------------------------------------------------ reading the flow
    def state(self) -> str:
        """'calling', 'waiting' or 'revealed' (see `ReadState.legacy_name`)."""
        return self.flow.state.legacy_name

    def is_revealed(self) -> bool:
        return self.flow.state is ReadState.REVEALED

    def selected_call(self) -> str | None:
        return self.flow.draft.call

    def choices(self) -> tuple[str, ...]:
        return self.flow.choices

    def confidence_set(self) -> bool:
        """True once the trainee has set the confidence for this read (it must be set to record)."""
        return self.flow.draft.confidence_set

    def current_call(self) -> ReadCall | None:
        """The call as entered (None until a call is chosen and the confidence set)."""
        return self.flow.draft.as_call()

    def recorded_call(self) -> ReadCall | None:
        return self.flow.recorded

    def marked_point(self) -> tuple[float, float] | None:
        return self.flow.draft.point

    # ------------------------------------------------------------------ intents
    def set_choices(self, calls_or_labels: tuple[str, ...] | list[str]) -> None:
        """The call buttons: a model's class labels (+ Other), or calls; a chosen call is kept if still offered."""
        self.flow.set_choices(calls_or_labels)

    def set_call(self, call: str, confidence: int | None = None) -> None:
        """Choose a call (and confidence) programmatically, e.g. in tests or from shortcuts."""
        self.flow.choose(call)
        if confidence is not None:
            self.flow.set_confidence(int(confidence))

    def set_marked_point(self, x: float, y: float) -> None:
        """The region of concern, in image pixels (from `PointPicker.point_picked`)."""
        self.flow.set_point(x, y)
        self.mark_button.setChecked(False)

    def clear_marked_point(self) -> None:
        self.flow.clear_point()
        self.mark_button.setChecked(False)

    def reset(self, message: str = "") -> None:
        """Start the read again: nothing chosen, nothing marked, result hidden; `message` in the status line."""
        self._message = message
        self.flow.reset()
        self._render()

    def set_message(self, message: str) -> None:
        self._message = message
        self._render()

    def show_comparison(self, comparison: RevealComparison) -> None:
        """Show the reveal (only after the call is recorded: the flow refuses it before)."""
        self.flow.reveal(comparison)

    def focus_call(self) -> None:
        """Put the keyboard focus on the read (F2): then a letter calls, digits set confidence, Enter records."""
        button = self.call_group.checkedButton() or next(iter(self.call_buttons.values()), None)
        if button is not None and button.isEnabled():
            button.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # ------------------------------------------------------------------ rendering
    def _build_call_buttons(self, calls: tuple[str, ...]) -> None:
        if calls == tuple(self.call_buttons):
            return
        for button in self.call_buttons.values():
            self.call_group.removeButton(button)
            self._calls_layout.removeWidget(button)
            button.deleteLater()
        self.call_buttons = {}
        self.call_keys = call_keys(calls)
        for i, call in enumerate(calls):
            key = self.call_keys[call]
            button = QPushButton(f"{call_title(call)}  [{key}]", self)
            button.setToolTip(f"Call {call_title(call)} (key {key} while the Read First panel "
                              "has the focus; F2 puts it there)")
            button.setAccessibleName(f"Call {call_title(call)}")
            button.installEventFilter(self)
            button.setObjectName(f"call_{call}")
            button.setCheckable(True)
            button.setProperty("callButton", True)
            button.setMinimumHeight(28)
            self.call_group.addButton(button, i)
            self.call_buttons[call] = button
            self._calls_layout.addWidget(button, i // 2, i % 2)
        self._render()

    def _render(self) -> None:
        flow, draft = self.flow, self.flow.draft
        calling = flow.is_calling()
        focused = QApplication.focusWidget()
        focus_inside = focused is not None and self.isAncestorOf(focused)
        self.call_group.blockSignals(True)
        self.call_group.setExclusive(False)
        for call, button in self.call_buttons.items():
            button.setChecked(call == draft.call)
            button.setEnabled(calling)
        self.call_group.setExclusive(True)
        self.call_group.blockSignals(False)
        self.confidence_slider.blockSignals(True)
        self.confidence_slider.setValue(draft.confidence)
        self.confidence_slider.blockSignals(False)
        self.confidence_slider.setEnabled(calling)
        self.confidence_value.setText(f"{draft.confidence} %" if draft.confidence_set else "not set")
        set_tone(self.confidence_value, "" if draft.confidence_set else "warning")
        self.mark_button.setEnabled(calling)
        self.clear_point_button.setEnabled(calling and draft.point is not None)
        self.point_label.setText("No region marked (optional)." if draft.point is None
                                 else f"Region marked at x {draft.point[0]:.0f}, y {draft.point[1]:.0f}.")
        ready = flow.can_record()
        self.reveal_button.setEnabled(ready)
        self._keep_focus(focus_inside)
        self.reveal_button.setToolTip("Record your call and reveal the AI (Enter)" if ready
                                      else "Choose a call and set your confidence first"
                                      if draft.call is None else "Set your confidence first")
        if flow.state is ReadState.RECORDED:
            self.status_label.setText(WAITING_TEXT)
        elif flow.state is ReadState.REVEALED:
            self.status_label.setText("")
        else:
            self.status_label.setText(self._message)
            self.result_frame.hide()

    def _keep_focus(self, was_inside: bool) -> None:
        """Disabling the focused call button (the read is recorded) lets Qt hand the focus to the next
        widget in the window — the banner's "Model card…" button, which Space would then press. Keep it
        on the panel instead."""
        focused = QApplication.focusWidget()
        if was_inside and (focused is None or not self.isAncestorOf(focused)):
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def _show_comparison(self, comparison: RevealComparison) -> None:
        call, decided = comparison.call, comparison.model_call
        if decided is None:
            model_text = "The model gave no result for this image."
        else:
            model_text = (f"Model <b>{html.escape(comparison.model_name)}</b> calls "
                          f"<b>{html.escape(decided.label)}</b> ({html.escape(decided.reason)})")
        agree = _verdict(comparison.agrees_with_model, "you agree with the model", "you and the model differ", "")
        self.comparison_label.setText(
            f"You: <b>{call.title}</b> (confidence {call.confidence} %)<br>{model_text}<br>{agree}"
            + self._outside_caveat(comparison))
        self.probability_bars.set_probabilities(comparison.labels, comparison.probabilities,
                                                decided.label if decided is not None else None)
        self.probability_bars.setVisible(bool(comparison.probabilities))
        self.point_result_label.setText(point_text(comparison))
        if comparison.known_label:
            self.known_label_label.setText(
                f"Known label (from the folder): <b>{html.escape(comparison.known_label)}</b> — " + _verdict(
                    comparison.agrees_with_known_label, "your call matches", "your call does not match", ""))
            self.known_label_label.show()
        else:
            self.known_label_label.hide()
        self.result_frame.show()
        self._render()

    def _outside_caveat(self, comparison: RevealComparison) -> str:
        """A line under the verdict when the image was flagged as unlike the model's training data:
        the AI panel holds that result back as a guess, so the reveal must not show it unqualified."""
        prediction = self.flow.current_prediction()
        if prediction is None or prediction.ood is None or not prediction.outside_training_data \
                or prediction.model_name != comparison.model_name:
            return ""
        message = html.escape(prediction.ood.message(prediction.model_name))
        return f"<br><span style='color:#d68910'>⚠ {message} — its answer here is a guess.</span>"

    # ------------------------------------------------------------------ the keyboard
    def _key_action(self, event: QKeyEvent) -> Callable[[], None] | None:
        """What a key does while calling (None: not one of ours)."""
        if not self.flow.is_calling() or event.modifiers() & ~(Qt.KeyboardModifier.KeypadModifier
                                                                | Qt.KeyboardModifier.ShiftModifier):
            return None
        key, text = event.key(), event.text().upper()
        for call, letter in self.call_keys.items():
            if text == letter and self.call_buttons[call].isEnabled():
                return lambda c=call: self.call_buttons[c].setChecked(True)
        if text.isdigit() and len(text) == 1:
            return lambda v=int(text) * 10: self.flow.set_confidence(v)
        if text in ("+", "="):
            return lambda: self.flow.set_confidence(100)
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            step = 10 if key == Qt.Key.Key_Up else -10
            return lambda: self.flow.set_confidence(self.confidence_slider.value() + step)
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return lambda: self.reveal_button.click() if self.reveal_button.isEnabled() else None
        return None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Keys on the read's own widgets: taken before the window's one-letter shortcuts (V, O, 1…)."""
        if event.type() == QEvent.Type.ShortcutOverride and self._key_action(event) is not None:  # type: ignore[arg-type]
            event.accept()
            return True
        if event.type() == QEvent.Type.KeyPress:
            action = self._key_action(event)  # type: ignore[arg-type]
            if action is not None:
                action()
                return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ slots
    def _on_flow_changed(self, _state: ReadState) -> None:
        self._render()

    def _on_call_group_id_toggled(self, button_id: int, checked: bool) -> None:
        calls = tuple(self.call_buttons)
        if checked and 0 <= button_id < len(calls):
            self.flow.choose(calls[button_id])

    def _on_confidence_slider_value_changed(self, value: int) -> None:
        if self.flow.draft.confidence_set:
            self.flow.set_confidence(value)

    def _on_confidence_slider_touched(self, *_args: object) -> None:
        """The trainee moved the slider (drag, click, keys): from now on its value is their confidence.

        On a key or click, Qt has moved the slider's position but not yet its value when it says so."""
        self.flow.set_confidence(self.confidence_slider.sliderPosition())

    def _on_mark_button_toggled(self, checked: bool) -> None:
        self.mark_button.setText("Click the image…" if checked else "Mark region of concern")
        self.point_requested.emit(checked)

    def _on_reveal_button_clicked(self) -> None:
        if not self.flow.can_record():
            return
        self.mark_button.setChecked(False)
        call = self.flow.record()
        if call is not None:
            self.call_recorded.emit(call)
            self.reveal_requested.emit()


def make_read_first_dock(panel: ReadFirstPanel, parent: QWidget | None = None) -> QDockWidget:
    """The panel in a dock named "Read first" (objectName readFirstDock), scrolling when short."""
    dock = QDockWidget("Read first", parent)
    dock.setObjectName("readFirstDock")
    scroll = QScrollArea(dock)
    scroll.setObjectName("readFirstScroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    return dock
