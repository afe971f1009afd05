"""The AI second reader dock: model chooser and state, class probabilities, heat-map controls.

Shows what the model says, never more: first the model's CALL (`core.model_call`: the
card's operating threshold on its score) with the reason in numbers, then per-class
probability bars with the called class highlighted and the operating point drawn as a
marker on the bar of the score the threshold applies to (the summed "Pneumonia" bar for
pneumonia models, the COVID-19 bar for covid3), the top class, and beside the heat map the class it
explains with that class's probability ("Heat map for VIRAL — p = 0.73"), so a map is
never read without the number it belongs to. A map of a class below the model's operating
threshold waits behind a "Show anyway" button; a model card's shortcut warning is a banner
at the top; `MapLegend` repeats class, probability and colour scale on the image itself.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.core.model_call import COVID_RULE, PNEUMONIA_RULE, ModelCall
from cxrviewer.core.types import Prediction
from cxrviewer.ui.docks.overlay_controls import ColourBar, OverlayControls
from cxrviewer.ui.shell.theme import set_tone
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.widgets import make
from cxrviewer.ui.widgets.probability_bars import ProbabilityBar, ProbabilityBars, percent


def pneumonia_probability(prediction: Prediction, pneumonia_labels: Sequence[str]) -> float | None:
    """Sum of the pneumonia classes' probabilities, or None for a model without them."""
    labels = [label for label in pneumonia_labels if label in prediction.labels]
    if not labels:
        return None
    return float(sum(prediction.probability(label) for label in labels))


class AiPanel(QDockWidget):
    """Dock "AI second reader": model state, probabilities, heat-map caption and controls."""

    model_chosen = Signal(str)        # a registered model name picked in the combo
    retry_requested = Signal()
    show_anyway_requested = Signal()  # show a map held back by the operating threshold
    model_card_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("AI second reader", parent)
        self._hidden_paths: list[tuple[str, str]] = []   # (path or file name, what is shown instead)
        self.setObjectName("aiDock")
        body = QWidget(self)
        body.setObjectName("aiPanelBody")

        # model chooser and state ---------------------------------------------------------
        self.model_combo = QComboBox(body)
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setToolTip("AI model (registered in the models folder)")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.state_label = make.label(body, "aiState", wrap=True)
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = make.button(body, "Retry", "aiRetry", "Try loading the model again")
        self.retry_button.hide()
        self.model_card_button = make.button(body, "Model card…", "aiModelCard",
                                             "What the model was trained on, how well it does, and its limits")
        self.shortcut_label = make.label(body, "aiShortcutWarning", wrap=True, rich=True)
        self.shortcut_label.setStyleSheet(
            "QLabel { background: #5a3b00; color: #fff1d6; border: 1px solid #d08a00; padding: 4px; }")
        self.shortcut_label.hide()
        model_row = QHBoxLayout()
        model_row.addWidget(QLabel("Model", body))
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.model_card_button)
        state_row = QHBoxLayout()
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)

        # results -------------------------------------------------------------------------
        self.results_box = QGroupBox("Prediction", body)
        self.results_box.setObjectName("aiResults")
        self.bars = ProbabilityBars(self.results_box)
        self.bars.setObjectName("aiProbabilityBars")
        self.call_label = make.label(body, "aiCall", wrap=True, rich=True)
        self.top_label = make.label(body, "aiTop")
        self.message_label = make.label(body, "aiMessage", wrap=True)
        results = QVBoxLayout(self.results_box)
        results.addWidget(self.call_label)
        results.addWidget(self.bars)
        results.addWidget(self.top_label)
        results.addWidget(self.message_label)

        # heat map ------------------------------------------------------------------------
        self.heatmap_box = QGroupBox("Heat map", body)
        self.heatmap_box.setObjectName("aiHeatMap")
        self.caption_label = make.label(body, "heatMapCaption", wrap=True)
        caption_font = QFont(self.caption_label.font())
        caption_font.setBold(True)
        self.caption_label.setFont(caption_font)
        self.gate_label = make.label(body, "heatMapGate", wrap=True)
        set_tone(self.gate_label, "warning")
        self.show_anyway_button = make.button(body, "Show anyway", "showAnyway",
                                              "Show the heat map although the model finds this class unlikely")
        gate_row = QHBoxLayout()
        gate_row.addWidget(self.gate_label, 1)
        gate_row.addWidget(self.show_anyway_button, 0, Qt.AlignmentFlag.AlignTop)
        self.controls = OverlayControls(body)
        heatmap = QVBoxLayout(self.heatmap_box)
        heatmap.addWidget(self.caption_label)
        heatmap.addLayout(gate_row)
        heatmap.addWidget(self.controls)

        self.disclaimer = make.label(body, "aiDisclaimer", NOT_FOR_CLINICAL_USE, wrap=True)
        set_tone(self.disclaimer, "problem")

        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(model_row)
        layout.addWidget(self.shortcut_label)
        layout.addLayout(state_row)
        layout.addWidget(self.results_box)
        layout.addWidget(self.heatmap_box)
        layout.addStretch(1)
        layout.addWidget(self.disclaimer)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.model_combo.activated.connect(self._on_model_combo_activated)
        self.retry_button.clicked.connect(self._on_retry_button_clicked)
        self.show_anyway_button.clicked.connect(self.show_anyway_requested)
        self.model_card_button.clicked.connect(self.model_card_requested)
        self.clear_prediction("")
        self.set_caption("")
        self.set_gate("")

    # ------------------------------------------------------------------------------ model
    def set_models(self, names: Sequence[str], current: str | None) -> None:
        """List the registered models; select `current` (no signal)."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name in names:
            self.model_combo.addItem(name, name)
        if not names:
            self.model_combo.addItem("(no models)", None)
        self.select_model(current)
        self.model_combo.setEnabled(bool(names))
        self.model_combo.blockSignals(False)

    def select_model(self, name: str | None) -> None:
        index = self.model_combo.findData(name) if name else -1
        if index >= 0:
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(index)
            self.model_combo.blockSignals(False)

    def model_names(self) -> list[str]:
        return [self.model_combo.itemData(i) for i in range(self.model_combo.count()) if self.model_combo.itemData(i)]

    def set_state(self, text: str, *, problem: bool = False, retry: bool = False) -> None:
        """The line under the model chooser: loading, ready, analysing, or what went wrong."""
        self.state_label.setText(self._scrubbed(text))
        set_tone(self.state_label, "problem" if problem else "")
        self.retry_button.setVisible(retry)

    def state_text(self) -> str:
        return self.state_label.text()

    def set_hidden_paths(self, replacements: Mapping[str, str]) -> None:
        """During a practice packet: a message naming one of these paths or file names (the staging folder, a
        case's copy or original) shows its replacement ("Practice case 3 of 12") instead; {} ends it."""
        self._hidden_paths = sorted(((k, v) for k, v in replacements.items() if k), key=lambda kv: -len(kv[0]))
        for label in (self.state_label, self.message_label, self.gate_label, self.caption_label):
            label.setText(self._scrubbed(label.text()))

    def _scrubbed(self, text: str) -> str:
        for hidden, shown in self._hidden_paths:   # longest first: a whole path before its file name
            text = text.replace(hidden, shown)
        return text

    # ---------------------------------------------------------------------------- results
    def show_prediction(self, prediction: Prediction, pneumonia_labels: Sequence[str] = (),
                        call: ModelCall | None = None) -> None:
        """The call first, then bars for every class (and the pneumonia sum) with the operating point marked."""
        pneumonia = pneumonia_probability(prediction, pneumonia_labels)
        self.bars.set_labels(prediction.labels, pneumonia is not None)
        called = call.label if call is not None else prediction.top_label
        markers = {"COVID-19": call.threshold} if call is not None and call.kind == COVID_RULE else {}
        self.bars.set_probabilities(prediction.labels, prediction.probabilities, called, markers)
        top = prediction.top_index
        self.top_label.setText(f"Top class: {prediction.top_label} ({percent(prediction.probabilities[top])})")
        if call is None:
            self.call_label.setText("")
            self.call_label.hide()
        else:
            if call.kind == PNEUMONIA_RULE or call.kind == COVID_RULE:
                why = (f"{html.escape(call.score_name)} {percent(call.score)} is "
                       f"{'at or above' if call.positive else 'below'} the operating threshold "
                       f"{percent(call.threshold)} (the tick on the bar)")
            else:
                why = "the most likely class"
            self.call_label.setText(f"<span style='font-size:large'>Model's call: <b>{html.escape(call.label)}</b>"
                                    f"</span><br>{why}")
            self.call_label.setToolTip(f"Decision rule of this model's card: {call.rule}")
            self.call_label.show()
        if pneumonia is not None:   # the summed bar says the number; the call line says the threshold
            self.bars.set_summary(pneumonia, highlight=call is not None and call.positive,
                                  marker=call.threshold if call is not None and call.kind == PNEUMONIA_RULE else None,
                                  parts=pneumonia_labels)
        self.message_label.setText("")
        self.message_label.hide()
        self.results_box.setEnabled(True)

    def call_text(self) -> str:
        return self.call_label.text() if not self.call_label.isHidden() else ""

    def clear_prediction(self, message: str) -> None:
        """No result to show (no image, no model, analysing…): keep the bars, empty, greyed."""
        self.bars.clear_values()
        self.top_label.setText("Top class: —")
        self.call_label.setText("Model's call: —")
        self.call_label.show()
        self.message_label.setText(self._scrubbed(message))
        self.message_label.setVisible(bool(message))
        self.results_box.setEnabled(False)

    def probabilities_shown(self) -> dict[str, float]:
        return self.bars.values()

    def set_caption(self, text: str) -> None:
        """The line over the controls, e.g. "Heat map for VIRAL — p = 0.73"."""
        self.caption_label.setText(self._scrubbed(text) or "No heat map")

    def caption(self) -> str:
        return self.caption_label.text()

    def set_gate(self, text: str, *, offer_show: bool = False) -> None:
        """The line under the caption about the operating threshold ("" hides it), with "Show anyway"."""
        self.gate_label.setText(self._scrubbed(text))
        self.gate_label.setVisible(bool(text))
        self.show_anyway_button.setVisible(bool(text) and offer_show)

    def gate_text(self) -> str:
        return self.gate_label.text() if not self.gate_label.isHidden() else ""

    def set_shortcut_warning(self, warnings: Sequence[str]) -> None:
        """A banner for the model card's shortcut warnings (none: hidden)."""
        items = [str(w) for w in warnings if str(w).strip()]
        if not items:
            self.shortcut_label.clear()
            self.shortcut_label.hide()
            return
        body = "<br>".join(f"• {html.escape(item)}" for item in items)
        self.shortcut_label.setText(f"<b>⚠ Shortcut warning for this model</b><br>{body}")
        self.shortcut_label.show()

    def shortcut_warning_text(self) -> str:
        return self.shortcut_label.text() if not self.shortcut_label.isHidden() else ""

    # ---------------------------------------------------------------------------- helpers
    def pneumonia_bar(self) -> ProbabilityBar | None:
        return self.bars.summary_bar

    def set_labels(self, labels: Sequence[str], pneumonia: bool = False) -> None:
        """Lay out empty bars for a model's classes (before its first prediction)."""
        self.bars.set_labels(labels, pneumonia)

    # ------------------------------------------------------------------------------ slots
    def _on_model_combo_activated(self, index: int) -> None:
        name = self.model_combo.itemData(index)
        if name:
            self.model_chosen.emit(str(name))

    def _on_retry_button_clicked(self) -> None:
        self.retry_requested.emit()


class MapLegend(QFrame):
    """On the image: the class the map explains, its probability, and the colour scale.

    A child of the canvas (not of its viewport, so exports of the viewport leave it out —
    they get a caption band instead), centred at the bottom, transparent to the mouse; where
    the bottom corner text is in the way (a narrow pane) it sits just above it, never over it.
    Call `set_content` / `set_scale`; hide it when the map is hidden.
    """

    WIDTH = 230
    MIN_WIDTH = 120    # on a narrower image area the legend is wider than it
    MARGIN = 10
    GAP = 4            # between the legend and the corner text below it

    def __init__(self, canvas: ImageCanvas) -> None:
        super().__init__(canvas)
        self.setObjectName("mapLegend")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setStyleSheet("#mapLegend { background: rgba(20, 20, 20, 190); border-radius: 4px; }"
                           "#mapLegend QLabel { color: #f0f0f0; }")
        self.text = QLabel(self)
        self.text.setObjectName("mapLegendText")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.colour_bar = ColourBar(self)
        palette = self.colour_bar.palette()
        palette.setColor(self.colour_bar.foregroundRole(), QColor(240, 240, 240))
        self.colour_bar.setPalette(palette)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 3)
        layout.setSpacing(2)
        layout.addWidget(self.text)
        layout.addWidget(self.colour_bar)
        self.setFixedWidth(self.WIDTH)
        self.hide()
        self._canvas = canvas
        self._area = canvas.viewport()
        self._area.installEventFilter(self)   # the viewport is resized after the canvas: follow it
        # the corner text changes with the image, window, zoom and orientation: keep clear of it
        canvas.window_changed.connect(lambda _window: self._place())
        canvas.zoom_changed.connect(lambda _zoom: self._place())
        canvas.view_changed.connect(self._place)

    def set_content(self, text: str) -> None:
        """The legend grows to fit its text (never clipped), up to the image area's width, then wraps."""
        self.text.setText(text)
        self._fit()

    def _fit(self) -> None:
        """Width for the text within the image area (a narrow pane: down to MIN_WIDTH, wrapped), then place."""
        area = self._area.width()
        available = max(area - 2 * self.MARGIN, self.MIN_WIDTH) if area > 0 else 10_000
        needed = self.text.fontMetrics().horizontalAdvance(self.text.text()) + 24
        self.text.setWordWrap(needed > available)
        width = min(max(self.WIDTH, needed), available)
        self.setFixedWidth(width)
        layout = self.layout()
        layout.activate()
        self.resize(width, layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else self.sizeHint().height())
        self._place()

    def set_scale(self, colormap: str, threshold: float, absolute_max: float | None) -> None:
        self.colour_bar.set_colormap(colormap)
        self.colour_bar.set_threshold(threshold)
        self.colour_bar.set_scale(absolute_max)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._area and event.type() == QEvent.Type.Resize:
            self._fit()
        return False

    def _place(self) -> None:
        """Centred at the bottom of the image area, moved up above any bottom corner text it would cover."""
        area = self._area.geometry()
        x = max(area.left() + (area.width() - self.width()) // 2, area.left())
        y = area.bottom() - self.height() - self.MARGIN
        bounds = self._canvas.corner_text_bounds()
        for corner in ("bottom_left", "bottom_right"):
            block = bounds.get(corner)
            if block is None:
                continue
            block = block.translated(area.topLeft().toPointF())
            if block.left() < x + self.width() and block.right() > x:    # side by side they would overlap
                y = min(y, int(block.top()) - self.GAP - self.height())
        self.move(x, max(y, area.top()))
        self.raise_()
