"""Read-first mode: the trainee commits to a call before the AI result and heat map are shown.

Pieces, each usable on its own:

* `ReadFirstPanel` — call buttons (the loaded model's classes + Other, `set_choices`), a
  confidence slider that must be set before recording, a "Mark region" toggle, and "Record
  call and reveal". After the reveal it shows the trainee's call beside the model's CALL
  (`core.model_call`, the card's threshold rule: the same as the AI panel), whether they
  agree, whether the marked point lies in the hot region (`teaching.reads.HOT_REGION_RULE`),
  and the folder's known label when there is one.
* `PointPicker` — while active, a left click on the canvas marks a point (image pixels)
  and draws a marker that follows zoom/rotation; dragging still pans.
* `ReadFirstSession` — the glue: hides the AI until the reveal, matches results to the
  image shown, builds the comparison and saves the read (content hash only, no patient data).
* `read_first_enabled` / `make_read_first_action` — the on-by-default setting and its toggle.
"""
from __future__ import annotations

import html
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QDockWidget,
    QFrame,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from cxrviewer.core.errors import CxrError
from cxrviewer.teaching.known_label import known_label
from cxrviewer.core.model.runtime import image_key
from cxrviewer.teaching.reads import (
    CALLS,
    DEFAULT_HOT_THRESHOLD,
    HOT_MASS_SHARE,
    call_title,
    calls_for_labels,
    ReadCall,
    ReadRecord,
    ReadStore,
    RevealComparison,
    compare_read,
)
from cxrviewer.core.types import CamResult, Prediction, XrayImage
from cxrviewer.ui.canvas import ImageCanvas
from cxrviewer.ui.theme import set_tone

log = logging.getLogger(__name__)

READ_FIRST_SETTING = "ai/read_first"
CLICK_TOLERANCE = 4.0     # a press and release closer than this (device px) is a click, not a pan
MARKER_Z = 200.0          # above the heat map and the rulers


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


# ================================================================== probability bars

class ProbabilityBars(QWidget):
    """Horizontal bars, one per class, the model's call highlighted; the numbers always drawn."""

    ROW_HEIGHT = 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readFirstProbabilities")
        self._labels: tuple[str, ...] = ()
        self._values: tuple[float, ...] = ()
        self._highlight: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_probabilities(self, labels: tuple[str, ...], values: tuple[float, ...],
                          highlight: str | None = None) -> None:
        """`highlight`: the class to colour (the model's call); None: the top class."""
        self._labels, self._values = tuple(labels), tuple(float(v) for v in values)
        self._highlight = highlight
        self.setFixedHeight(max(1, len(self._labels)) * self.ROW_HEIGHT + 4)
        self.update()

    def texts(self) -> list[str]:
        return [f"{label} {value * 100:.1f} %" for label, value in zip(self._labels, self._values)]

    def sizeHint(self) -> QSize:
        return QSize(240, max(1, len(self._labels)) * self.ROW_HEIGHT + 4)

    def paintEvent(self, event: object) -> None:
        if not self._values:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        label_width = max(metrics.horizontalAdvance(label) for label in self._labels) + 8
        number_width = metrics.horizontalAdvance("100.0 %") + 6
        bar_width = max(self.width() - label_width - number_width, 10)
        top = self._labels.index(self._highlight) if self._highlight in self._labels else \
            max(range(len(self._values)), key=lambda i: self._values[i])
        text_colour = self.palette().windowText().color()
        for i, (label, value) in enumerate(zip(self._labels, self._values)):
            y = 2 + i * self.ROW_HEIGHT
            painter.setPen(text_colour)
            painter.drawText(QRectF(0, y, label_width - 6, self.ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
            track = QRectF(label_width, y + 5, bar_width, self.ROW_HEIGHT - 10)
            painter.fillRect(track, QColor(128, 128, 128, 50))
            fill = QRectF(track.left(), track.top(), track.width() * min(max(value, 0.0), 1.0), track.height())
            painter.fillRect(fill, QColor("#c0392b") if i == top else QColor("#7f8c8d"))
            painter.setPen(text_colour)
            painter.drawText(QRectF(label_width + bar_width + 6, y, number_width, self.ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{value * 100:.1f} %")
        painter.end()


# ================================================================== the panel

def _heading(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setBold(True)
    label.setFont(font)
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


class ReadFirstPanel(QWidget):
    """The trainee's call, confidence and point; then the reveal comparison.

    States: "calling" (choose a call) → "waiting" (call recorded, result not in yet) →
    "revealed" (comparison shown). `reset()` starts again for the next image.
    """

    call_recorded = Signal(object)      # ReadCall
    reveal_requested = Signal()
    point_requested = Signal(bool)      # True: the next canvas click marks the region

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readFirstPanel")
        self._point: tuple[float, float] | None = None
        self._state = "calling"
        self._recorded: ReadCall | None = None

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
        self._calls_layout = calls = QGridLayout()
        calls.setSpacing(4)
        self.call_group.idToggled.connect(self._on_call_group_id_toggled)
        self.set_choices(CALLS)

        self.confidence_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.confidence_slider.setObjectName("confidenceSlider")
        self.confidence_slider.setRange(0, 100)
        self.confidence_slider.setSingleStep(5)
        self.confidence_slider.setPageStep(10)
        self.confidence_slider.setValue(50)
        self.confidence_slider.setToolTip("How sure are you of your call? 0 = guess, 100 = certain. "
                                          "Set it before recording (click, drag or use the arrow keys).")
        self.confidence_value = QLabel(self)
        self.confidence_value.setObjectName("confidenceValue")
        self.confidence_value.setMinimumWidth(60)
        self._confidence_set = False
        self.confidence_slider.valueChanged.connect(self._on_confidence_slider_value_changed)
        self.confidence_slider.actionTriggered.connect(self._on_confidence_slider_action_triggered)
        self.confidence_slider.sliderPressed.connect(self._on_confidence_slider_pressed)
        self.confidence_slider.installEventFilter(self)
        self.confidence_slider.setAccessibleName("Confidence")

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
        self.reveal_button.setToolTip("Record your call and reveal the AI (Enter)")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("readFirstStatus")
        self.status_label.setWordWrap(True)

        # after the reveal
        self.result_frame = QFrame(self)
        self.result_frame.setObjectName("revealFrame")
        self.result_frame.setFrameShape(QFrame.Shape.StyledPanel)
        self.comparison_label = QLabel(self.result_frame)
        self.comparison_label.setObjectName("comparisonLabel")
        self.comparison_label.setWordWrap(True)
        self.comparison_label.setTextFormat(Qt.TextFormat.RichText)
        self.probability_bars = ProbabilityBars(self.result_frame)
        self.point_result_label = QLabel(self.result_frame)
        self.point_result_label.setObjectName("pointResultLabel")
        self.point_result_label.setWordWrap(True)
        self.point_result_label.setTextFormat(Qt.TextFormat.RichText)
        self.known_label_label = QLabel(self.result_frame)
        self.known_label_label.setObjectName("knownLabelLabel")
        self.known_label_label.setWordWrap(True)
        self.known_label_label.setTextFormat(Qt.TextFormat.RichText)
        result_layout = QVBoxLayout(self.result_frame)
        result_layout.addWidget(_heading("Your call vs the model", self.result_frame))
        result_layout.addWidget(self.comparison_label)
        result_layout.addWidget(self.probability_bars)
        result_layout.addWidget(self.point_result_label)
        result_layout.addWidget(self.known_label_label)

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
        layout.addLayout(calls)
        layout.addWidget(QLabel("Confidence", self))
        layout.addLayout(confidence_row)
        layout.addLayout(point_row)
        layout.addWidget(self.point_label)
        layout.addWidget(self.reveal_button)
        layout.addWidget(self.status_label)
        layout.addWidget(self.result_frame)
        layout.addStretch(1)

        self._show_confidence()
        self.reset()

    # ------------------------------------------------------------------ public API
    def state(self) -> str:
        """'calling', 'waiting' or 'revealed'."""
        return self._state

    def is_revealed(self) -> bool:
        return self._state == "revealed"

    def selected_call(self) -> str | None:
        button = self.call_group.checkedButton()
        for call, candidate in self.call_buttons.items():
            if candidate is button:
                return call
        return None

    def choices(self) -> tuple[str, ...]:
        return tuple(self.call_buttons)

    def set_choices(self, calls_or_labels: tuple[str, ...] | list[str]) -> None:
        """The call buttons: a model's class labels (+ Other), or calls; a chosen call is kept if still offered."""
        calls = tuple(calls_or_labels)
        calls = calls if calls and all(c == c.lower() for c in calls) and "other" in calls \
            else calls_for_labels(calls)
        if calls == tuple(self.call_buttons):
            return
        chosen = self.selected_call()
        for button in self.call_buttons.values():
            self.call_group.removeButton(button)
            self._calls_layout.removeWidget(button)
            button.deleteLater()
        self.call_buttons = {}
        self.call_keys = call_keys(calls)
        columns = 2
        for i, call in enumerate(calls):
            button = QPushButton(f"{call_title(call)}  [{self.call_keys[call]}]", self)
            button.setToolTip(f"Call {call_title(call)} (key {self.call_keys[call]} while the Read First panel "
                              "has the focus; F2 puts it there)")
            button.setAccessibleName(f"Call {call_title(call)}")
            button.installEventFilter(self)
            button.setObjectName(f"call_{call}")
            button.setCheckable(True)
            button.setProperty("callButton", True)
            button.setMinimumHeight(28)
            self.call_group.addButton(button, i)
            self.call_buttons[call] = button
            self._calls_layout.addWidget(button, i // columns, i % columns)
        if chosen in self.call_buttons:
            self.call_buttons[chosen].setChecked(True)
        if hasattr(self, "reveal_button"):
            self._update_enabled()

    def confidence_set(self) -> bool:
        """True once the trainee has set the confidence for this read (it must be set to record)."""
        return self._confidence_set

    def current_call(self) -> ReadCall | None:
        """The call as currently entered (None until a call button is chosen and the confidence set)."""
        call = self.selected_call()
        if call is None or not self._confidence_set:
            return None
        return ReadCall(call, self.confidence_slider.value(), self._point)

    def recorded_call(self) -> ReadCall | None:
        return self._recorded

    def marked_point(self) -> tuple[float, float] | None:
        return self._point

    def set_call(self, call: str, confidence: int | None = None) -> None:
        """Choose a call (and confidence) programmatically, e.g. in tests or from shortcuts."""
        self.call_buttons[call].setChecked(True)
        if confidence is not None:
            self.confidence_slider.setValue(int(confidence))
            self._mark_confidence_set()

    def set_marked_point(self, x: float, y: float) -> None:
        """The region of concern, in image pixels (from `PointPicker.point_picked`)."""
        self._point = (float(x), float(y))
        self.mark_button.setChecked(False)
        self._update_point_label()

    def clear_marked_point(self) -> None:
        self._point = None
        self.mark_button.setChecked(False)
        self._update_point_label()

    def reset(self, message: str = "") -> None:
        """Back to "calling" for a new image: nothing chosen, nothing marked, result hidden."""
        self._state = "calling"
        self._recorded = None
        self.call_group.setExclusive(False)
        for button in self.call_buttons.values():
            button.setChecked(False)
        self.call_group.setExclusive(True)
        self.confidence_slider.blockSignals(True)
        self.confidence_slider.setValue(50)
        self.confidence_slider.blockSignals(False)
        self._confidence_set = False
        self._show_confidence()
        self._point = None
        self.mark_button.setChecked(False)
        self._update_point_label()
        self.result_frame.hide()
        self.status_label.setText(message)
        self._update_enabled()

    def show_comparison(self, comparison: RevealComparison) -> None:
        """Show the reveal: the call beside the model's top class, the point, the known label."""
        self._state = "revealed"
        call = comparison.call
        decided = comparison.model_call
        if decided is None:
            model_text = "The model gave no result for this image."
        else:
            model_text = (f"Model <b>{html.escape(comparison.model_name)}</b> calls "
                          f"<b>{html.escape(decided.label)}</b> ({html.escape(decided.reason)})")
        agree = _verdict(comparison.agrees_with_model, "you agree with the model",
                         "you and the model differ", "")
        self.comparison_label.setText(
            f"You: <b>{call.title}</b> (confidence {call.confidence} %)<br>{model_text}<br>{agree}"
        )
        self.probability_bars.set_probabilities(comparison.labels, comparison.probabilities,
                                                decided.label if decided is not None else None)
        self.probability_bars.setVisible(bool(comparison.probabilities))
        if call.point is None:
            point_text = "No region marked."
        elif comparison.point_heat is None:
            point_text = "Region marked; the heat map for it is not available yet."
        else:
            if comparison.hot_area is not None:
                region = (f"the hot region is the smallest part of the image holding "
                          f"{HOT_MASS_SHARE * 100:.0f} % of the map's heat — here {comparison.hot_area * 100:.0f} % "
                          f"of the image, where the map is ≥ {comparison.hot_threshold:.2f}")
            else:
                region = f"the hot region is where the map is ≥ {comparison.hot_threshold:.2f}"
            point_text = _verdict(
                comparison.point_in_hot_region,
                f"Your marked point is inside the hot region (map {comparison.point_heat:.2f}; {region}).",
                f"Your marked point is outside the hot region (map {comparison.point_heat:.2f}; {region}).",
                "",
            )
        self.point_result_label.setText(point_text)
        if comparison.known_label:
            self.known_label_label.setText(
                f"Known label (from the folder): <b>{html.escape(comparison.known_label)}</b> — " + _verdict(
                    comparison.agrees_with_known_label, "your call matches", "your call does not match", "")
            )
            self.known_label_label.show()
        else:
            self.known_label_label.hide()
        self.result_frame.show()
        self.status_label.setText("")
        self._update_enabled()

    # ------------------------------------------------------------------ the keyboard
    def focus_call(self) -> None:
        """Put the keyboard focus on the read (F2): then a letter calls, digits set confidence, Enter records."""
        button = self.call_group.checkedButton() or next(iter(self.call_buttons.values()), None)
        if button is not None and button.isEnabled():
            button.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _key_action(self, event: QKeyEvent) -> Callable[[], None] | None:
        """What a key does in the calling state (None: not one of ours)."""
        if self._state != "calling" or event.modifiers() & ~(Qt.KeyboardModifier.KeypadModifier
                                                               | Qt.KeyboardModifier.ShiftModifier):
            return None
        key, text = event.key(), event.text().upper()
        for call, letter in self.call_keys.items():
            if text == letter and self.call_buttons[call].isEnabled():
                return lambda c=call: self.call_buttons[c].setChecked(True)
        if text.isdigit() and len(text) == 1:
            return lambda v=int(text) * 10: self._set_confidence_from_keys(v)
        if text in ("+", "="):
            return lambda: self._set_confidence_from_keys(100)
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            step = 10 if key == Qt.Key.Key_Up else -10
            return lambda: self._set_confidence_from_keys(self.confidence_slider.value() + step)
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return lambda: self.reveal_button.click() if self.reveal_button.isEnabled() else None
        return None

    def _set_confidence_from_keys(self, value: int) -> None:
        self.confidence_slider.setValue(max(0, min(100, int(value))))
        self._mark_confidence_set()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Keys on the read's own widgets: taken before the window's one-letter shortcuts (V, O, 1…)."""
        if event.type() == QEvent.Type.ShortcutOverride and self._key_action(event) is not None:
            event.accept()
            return True
        if event.type() == QEvent.Type.KeyPress:
            action = self._key_action(event)
            if action is not None:
                action()
                return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ slots
    def _on_call_group_id_toggled(self, _id: int, _checked: bool) -> None:
        self._update_enabled()

    def _on_confidence_slider_value_changed(self, _value: int) -> None:
        self._show_confidence()

    def _on_confidence_slider_action_triggered(self, _action: int) -> None:
        self._mark_confidence_set()

    def _on_confidence_slider_pressed(self) -> None:
        self._mark_confidence_set()

    def _mark_confidence_set(self) -> None:
        if not self._confidence_set:
            self._confidence_set = True
            self._show_confidence()
            if hasattr(self, "reveal_button"):
                self._update_enabled()

    def _show_confidence(self) -> None:
        if self._confidence_set:
            self.confidence_value.setText(f"{self.confidence_slider.value()} %")
            set_tone(self.confidence_value, "")
        else:
            self.confidence_value.setText("not set")
            set_tone(self.confidence_value, "warning")

    def _on_mark_button_toggled(self, checked: bool) -> None:
        self.mark_button.setText("Click the image…" if checked else "Mark region of concern")
        self.point_requested.emit(checked)

    def _on_reveal_button_clicked(self) -> None:
        call = self.current_call()
        if call is None or self._state != "calling":
            return
        self.mark_button.setChecked(False)
        self._recorded = call
        self._state = "waiting"
        self.status_label.setText("Call recorded. Waiting for the model…")
        self._update_enabled()
        self.call_recorded.emit(call)
        self.reveal_requested.emit()

    # ------------------------------------------------------------------ helpers
    def _update_point_label(self) -> None:
        if self._point is None:
            self.point_label.setText("No region marked (optional).")
        else:
            self.point_label.setText(f"Region marked at x {self._point[0]:.0f}, y {self._point[1]:.0f}.")
        self.clear_point_button.setEnabled(self._point is not None and self._state == "calling")

    def _update_enabled(self) -> None:
        calling = self._state == "calling"
        for button in self.call_buttons.values():
            button.setEnabled(calling)
        self.confidence_slider.setEnabled(calling)
        self.mark_button.setEnabled(calling)
        self.clear_point_button.setEnabled(calling and self._point is not None)
        ready = self.selected_call() is not None and self._confidence_set
        self.reveal_button.setEnabled(calling and ready)
        self.reveal_button.setToolTip("Record your call and reveal the AI (Enter)" if ready
                                      else "Choose a call and set your confidence first"
                                      if self.selected_call() is None else "Set your confidence first")


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


# ================================================================== point picking on the canvas

class PointMarker(QGraphicsItem):
    """A ring with a cross, constant size on screen, at an image-pixel position."""

    RADIUS = 11.0

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)

    def boundingRect(self) -> QRectF:
        r = self.RADIUS + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.RADIUS
        for colour, width in ((QColor(0, 0, 0, 200), 4.0), (QColor("#00e5ff"), 2.0)):
            pen = QPen(colour, width)
            painter.setPen(pen)
            painter.drawEllipse(QPointF(0, 0), r, r)
            painter.drawLine(QPointF(-r - 2, 0), QPointF(-r / 2, 0))
            painter.drawLine(QPointF(r / 2, 0), QPointF(r + 2, 0))
            painter.drawLine(QPointF(0, -r - 2), QPointF(0, -r / 2))
            painter.drawLine(QPointF(0, r / 2), QPointF(0, r + 2))


class PointPicker(QObject):
    """While active, a left click on `canvas` (press and release within CLICK_TOLERANCE) picks a point.

    The canvas still receives the events, so dragging pans and right-drag windows as usual.
    The marker is a child of the canvas' image root, so it stays on the anatomy under zoom,
    pan, rotation and flips.
    """

    point_picked = Signal(float, float)   # x (column), y (row) in image pixels

    def __init__(self, canvas: ImageCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self._active = False
        self._press: QPointF | None = None
        self.marker = PointMarker()
        self.marker.setVisible(False)
        canvas.add_overlay_item(self.marker, MARKER_Z)
        canvas.viewport().installEventFilter(self)

    def is_active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        self._active = bool(active)
        self._press = None
        cursor = Qt.CursorShape.CrossCursor if active else Qt.CursorShape.ArrowCursor
        self._canvas.viewport().setCursor(cursor)

    def show_marker(self, x: float, y: float) -> None:
        self.marker.setPos(QPointF(x, y))
        self.marker.setVisible(True)

    def clear_marker(self) -> None:
        self.marker.setVisible(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._active or not isinstance(event, QMouseEvent):
            return False
        if event.type() == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position()
            return False   # let the canvas start a pan; a release near the press is a click
        if event.type() == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            press, self._press = self._press, None
            if press is None:
                return False
            moved = event.position() - press
            if abs(moved.x()) + abs(moved.y()) > CLICK_TOLERANCE:
                return False
            canvas = self._canvas
            image = canvas.image()
            if image is None:
                return False
            point = canvas.viewport_to_image(event.position())
            height, width = image.shape
            if 0 <= point.x() < width and 0 <= point.y() < height:
                self.show_marker(point.x(), point.y())
                self.point_picked.emit(float(point.x()), float(point.y()))
            return False
        return False


# ================================================================== the session

RESULTS_KEPT = 8   # results remembered per image key (a few images back and forth)


def _remember(store: OrderedDict, key: str, value: object) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > RESULTS_KEPT:
        store.popitem(last=False)


class ReadFirstSession(QObject):
    """Read-first flow for one window: hide the AI, take the call, reveal, compare, save.

    Feed it the image shown (`set_image`), the model's results for it (`set_prediction`,
    `set_cam`) and the overlay's threshold (`set_hot_threshold`); follow
    `ai_visibility_changed` to show or hide the AI panel's result and the overlay.
    A read is saved once per image, as soon as the comparison is complete.
    """

    ai_visibility_changed = Signal(bool)    # True: the AI result and overlay may be shown
    read_saved = Signal(object)             # ReadRecord
    problem = Signal(str)                   # the reads store failed (the read is not lost silently)

    def __init__(
        self,
        panel: ReadFirstPanel,
        store: ReadStore | Callable[[], ReadStore] | None = None,
        picker: PointPicker | None = None,
        enabled: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel = panel
        self.picker = picker
        self._store_source = store
        self._store: ReadStore | None = store if isinstance(store, ReadStore) else None
        self._enabled = bool(enabled)
        self._image: XrayImage | None = None
        self._key: str | None = None
        self._known: str | None = None
        self._predictions: OrderedDict[str, Prediction] = OrderedDict()   # by image key, newest last
        self._thresholds: dict[str, float] = {}                            # model name → card threshold
        self._cams: OrderedDict[str, CamResult] = OrderedDict()
        self._threshold = DEFAULT_HOT_THRESHOLD
        self._normalisation = ("per_image", None)
        self._saved = False
        self._ai_visible = not self._enabled
        self.last_comparison: RevealComparison | None = None

        panel.reveal_requested.connect(self._on_panel_reveal_requested)
        panel.point_requested.connect(self._on_panel_point_requested)
        panel.clear_point_button.clicked.connect(self._on_panel_point_cleared)
        if picker is not None:
            picker.point_picked.connect(self._on_picker_point_picked)
        panel.setEnabled(False)     # nothing to read until an image is shown
        panel.reset("Open an image to start a read.")

    # ------------------------------------------------------------------ inputs
    def is_enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Read-first mode on/off. Off: the AI shows at once and nothing is recorded."""
        self._enabled = bool(enabled)
        self.panel.setEnabled(self._enabled and self._image is not None)
        if not self._enabled:
            self._stop_picking()
        self._set_ai_visible(not self._enabled or self.panel.state() != "calling")

    def ai_visible(self) -> bool:
        return self._ai_visible

    def current_prediction(self) -> Prediction | None:
        """The model's prediction for the image being read (known even before the reveal)."""
        return self._predictions.get(self._key) if self._key is not None else None

    def export_state(self) -> str | None:
        """For an export's sidecar: None (read-first off), "before reveal" or "revealed"."""
        if not self._enabled:
            return None
        return "revealed" if self._ai_visible else "before reveal"

    def set_image(self, image: XrayImage | None) -> None:
        """A new image is shown: start a new read (the AI is hidden again in read-first mode)."""
        self._image = image
        self._key = image_key(image) if image is not None else None
        self._known = None
        if image is not None:
            label = known_label(image.path)
            self._known = label.label if label is not None else None
        self._saved = False
        self.last_comparison = None
        self._stop_picking()
        if self.picker is not None:
            self.picker.clear_marker()
        self.panel.reset("" if image is not None else "Open an image to start a read.")
        self.panel.setEnabled(self._enabled and image is not None)
        self._set_ai_visible(not self._enabled)

    def set_model(self, model_name: str, labels: tuple[str, ...] | list[str], operating_threshold: float) -> None:
        """The loaded model: its classes are the call choices, its card threshold decides its call."""
        self._thresholds[model_name] = float(operating_threshold)
        if self.panel.state() == "calling":
            self.panel.set_choices(tuple(labels))

    def set_prediction(self, prediction: Prediction) -> None:
        """A prediction for some image; used when (and if) that image is the one being read.

        Results are kept per image, so it does not matter whether they arrive before or after
        `set_image` (a cached result can be emitted before the session hears of the image).
        """
        _remember(self._predictions, prediction.image_key, prediction)
        if prediction.image_key == self._key:
            self._update()

    def set_cam(self, cam: CamResult | None) -> None:
        if cam is None:
            return
        _remember(self._cams, cam.image_key, cam)
        if cam.image_key == self._key:
            self._update()

    def set_hot_threshold(self, threshold: float, normalisation: str = "per_image",
                          absolute_max: float | None = None) -> None:
        """The overlay's scale (per-image or absolute) for reading the map at the marked point.

        The display threshold no longer decides "hot" (at 20 % almost any click was inside):
        the hot region follows `teaching.reads.HOT_REGION_RULE`; the threshold is kept for callers.
        """
        self._threshold = float(threshold)
        self._normalisation = (normalisation, absolute_max)
        if not self._saved:
            self._update()

    # ------------------------------------------------------------------ slots
    def _on_panel_reveal_requested(self) -> None:
        self._stop_picking()
        self._set_ai_visible(True)
        self._update()

    def _on_panel_point_requested(self, active: bool) -> None:
        if self.picker is not None:
            self.picker.set_active(active and self._enabled)

    def _on_panel_point_cleared(self) -> None:
        if self.picker is not None:
            self.picker.clear_marker()

    def _on_picker_point_picked(self, x: float, y: float) -> None:
        self.panel.set_marked_point(x, y)
        if self.picker is not None:
            self.picker.set_active(False)

    # ------------------------------------------------------------------ helpers
    def _stop_picking(self) -> None:
        if self.picker is not None and self.picker.is_active():
            self.picker.set_active(False)

    def _set_ai_visible(self, visible: bool) -> None:
        if visible != self._ai_visible:
            self._ai_visible = visible
            self.ai_visibility_changed.emit(visible)

    def _update(self) -> None:
        call = self.panel.recorded_call()
        prediction = self.current_prediction()
        if not self._enabled or call is None or prediction is None or self._image is None:
            return
        cam = self._cams.get(self._key)
        mode, absolute_max = self._normalisation
        comparison = compare_read(
            call,
            prediction.model_name,
            prediction.labels,
            prediction.probabilities,
            cam=None if cam is None else cam.cam,
            image_shape=self._image.shape,
            hot_threshold=None,                  # the mass rule, not the display threshold
            known_label=self._known,
            mode=mode,
            absolute_max=absolute_max,
            operating_threshold=self._thresholds.get(prediction.model_name),
        )
        self.last_comparison = comparison
        self.panel.show_comparison(comparison)
        if not self._saved and (call.point is None or comparison.point_heat is not None):
            self._save(comparison)

    def _save(self, comparison: RevealComparison) -> None:
        image = self._image
        if image is None or not image.sha256:
            self.problem.emit("This image has no content hash, so the read was not saved.")
            self._saved = True
            return
        try:
            store = self._open_store()
            record = store.add(ReadRecord.from_comparison(comparison, image.sha256, image.frame_index))
        except (CxrError, ValueError) as exc:
            log.warning("read not saved: %s", exc)
            self.problem.emit(f"Your read could not be saved: {exc}")
            self._saved = True
            return
        self._saved = True
        self.read_saved.emit(record)

    def _open_store(self) -> ReadStore:
        if self._store is None:
            source = self._store_source
            self._store = source() if callable(source) else ReadStore()
        return self._store

    def store(self) -> ReadStore:
        """The reads store (opened on first use)."""
        return self._open_store()

    def store_path(self) -> Path | None:
        return self._store.path if self._store is not None else None
