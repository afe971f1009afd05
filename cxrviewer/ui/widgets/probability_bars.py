"""Class probabilities as bars: the one bar widget of the AI panel and of the read-first reveal.

`ProbabilityBar` is one bar 0–100 % with the number written on it, optionally highlighted
(the model's call) and with the operating threshold as a tick. `ProbabilityBars` lays out
one named bar per class, plus an optional summary row (the summed pneumonia score).
"""
from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

BAR_COLOUR = QColor(52, 120, 198)
TOP_BAR_COLOUR = QColor(214, 120, 30)
MARKER_COLOUR = QColor(20, 20, 20)


NO_VALUE_TEXT = "—"   # an emptied bar: no result to show (hidden, outside the training data, analysing)


def percent(probability: float) -> str:
    return f"{probability * 100:.1f} %"


class ProbabilityBar(QWidget):
    """A horizontal bar 0–100 % with the percentage written on it; "—" on an emptied bar (`clear`),
    which must not read as a 0 % result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0.0
        self._empty = True
        self._highlight = False
        self._marker: float | None = None
        self.setMinimumWidth(80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(160, self.fontMetrics().height() + 6)

    def value(self) -> float:
        return self._value

    def is_highlighted(self) -> bool:
        return self._highlight

    def set_value(self, value: float, highlight: bool = False) -> None:
        self._value = min(max(float(value), 0.0), 1.0)
        self._highlight = highlight
        self._empty = False
        self.setToolTip(percent(self._value))
        self.update()

    def clear(self) -> None:
        """No value: an empty bar that says "—" (its value() is 0.0), without a threshold tick."""
        self._value, self._highlight, self._empty, self._marker = 0.0, False, True, None
        self.setToolTip("No result shown")
        self.update()

    def is_empty(self) -> bool:
        return self._empty

    def text(self) -> str:
        return NO_VALUE_TEXT if self._empty else percent(self._value)

    def set_marker(self, value: float | None) -> None:
        """The operating threshold as a tick on the bar (None: no tick)."""
        self._marker = None if value is None else min(max(float(value), 0.0), 1.0)
        if self._marker is not None:
            self.setToolTip(f"{percent(self._value)} — the model's operating threshold is at {percent(self._marker)}")
        self.update()

    def marker(self) -> float | None:
        return self._marker

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        frame = QRectF(0.5, 0.5, self.width() - 1.0, self.height() - 1.0)
        painter.fillRect(frame, self.palette().color(self.palette().ColorRole.Base))
        fill = QRectF(frame.left(), frame.top(), frame.width() * self._value, frame.height())
        painter.fillRect(fill, TOP_BAR_COLOUR if self._highlight else BAR_COLOUR)
        painter.setPen(self.palette().color(self.palette().ColorRole.Mid))
        painter.drawRect(frame)
        if self._marker is not None:
            x = frame.left() + frame.width() * self._marker
            for colour, width in ((QColor(255, 255, 255), 4.0), (MARKER_COLOUR, 2.0)):
                pen = painter.pen()
                pen.setColor(colour)
                pen.setWidthF(width)
                painter.setPen(pen)
                painter.drawLine(int(round(x)), int(frame.top()) - 1, int(round(x)), int(frame.bottom()) + 1)
        painter.setPen(self.palette().color(self.palette().ColorRole.Text))
        painter.drawText(frame.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.text())
        painter.end()


class ProbabilityBars(QWidget):
    """One named `ProbabilityBar` per class (the highlighted one in bold), and an optional summary row."""

    def __init__(self, parent: QWidget | None = None, summary_name: str = "Pneumonia",
                 summary_tip: str = "The sum of the pneumonia classes: the score the threshold applies to") -> None:
        super().__init__(parent)
        self._summary_name_text, self._summary_tip = summary_name, summary_tip
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setColumnStretch(1, 1)
        self._grid.setHorizontalSpacing(8)
        self.names: list[QLabel] = []
        self.bars: list[ProbabilityBar] = []
        self.summary_name: QLabel | None = None
        self.summary_bar: ProbabilityBar | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.hide()

    # -- layout -----------------------------------------------------------------------------
    def labels(self) -> list[str]:
        return [name.text() for name in self.names]

    def set_labels(self, labels: Sequence[str], summary: bool = False) -> None:
        """One empty row per class (kept when the classes are the same), and the summary row or not."""
        if self.labels() == list(labels) and (self.summary_bar is not None) == summary:
            return
        extra = [self.summary_name, self.summary_bar] if self.summary_bar is not None else []
        for widget in (*self.names, *self.bars, *extra):
            if widget is not None:
                self._grid.removeWidget(widget)
                widget.deleteLater()
        self.names, self.bars = [], []
        self.summary_name = self.summary_bar = None
        for row, label in enumerate(labels):
            name = QLabel(label, self)
            bar = ProbabilityBar(self)
            bar.setObjectName(f"probabilityBar_{label}")
            self._grid.addWidget(name, row, 0)
            self._grid.addWidget(bar, row, 1)
            self.names.append(name)
            self.bars.append(bar)
        if summary:
            self.summary_name = QLabel(self._summary_name_text, self)
            self.summary_name.setToolTip(self._summary_tip)
            self.summary_bar = ProbabilityBar(self)
            self.summary_bar.setObjectName("probabilityBar_pneumonia")
            self._grid.addWidget(self.summary_name, len(labels), 0)
            self._grid.addWidget(self.summary_bar, len(labels), 1)
        self.setVisible(bool(labels))   # no rows: no gap in the parent's layout either

    # -- values -----------------------------------------------------------------------------
    def set_probabilities(self, labels: Sequence[str], values: Sequence[float], highlight: str | None = None,
                          markers: dict[str, float] | None = None) -> None:
        """Values per class; `highlight` (the model's call, in bold) or the top class; ticks at `markers`."""
        self.set_labels(labels, self.summary_bar is not None)
        values = [float(v) for v in values]
        if highlight not in labels and values:
            highlight = labels[max(range(len(values)), key=lambda i: values[i])]
        self._bold_name(highlight)
        for bar, label, value in zip(self.bars, labels, values):
            bar.set_value(value, highlight=label == highlight)
            bar.set_marker((markers or {}).get(label))

    def _bold_name(self, label: str | None) -> None:
        """The name of `label` (the highlighted class) in bold, the others not (None: none bold)."""
        for name in self.names:
            font = QFont(name.font())
            font.setBold(name.text() == label)
            name.setFont(font)

    def set_summary(self, value: float | None, highlight: bool = False, marker: float | None = None,
                    parts: Sequence[str] = ()) -> None:
        """The summary row's value and tick; `parts` (the classes summed) go into its name's tool tip."""
        if self.summary_bar is not None and value is not None:
            self.summary_bar.set_value(value, highlight=highlight)
            self.summary_bar.set_marker(marker)
        if self.summary_name is not None:
            summed = " + ".join(parts)
            self.summary_name.setToolTip(f"{summed}: {self._summary_tip}" if summed else self._summary_tip)

    def clear_values(self) -> None:
        for bar in (*self.bars, *([self.summary_bar] if self.summary_bar is not None else [])):
            bar.clear()
        self._bold_name(None)

    def values(self) -> dict[str, float]:
        return {name.text(): bar.value() for name, bar in zip(self.names, self.bars) if name.text()}

    def texts(self) -> list[str]:
        return [f"{name.text()} {bar.text()}" for name, bar in zip(self.names, self.bars)]
