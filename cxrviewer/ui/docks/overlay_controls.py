"""Heat-map controls: show/hide, opacity, colour map, threshold, style, scale, class, method, layer.

The widget only reports what the user changed; `AiController` puts it into
`state.overlay.OverlaySettings`, which says what each change costs:

* `opacity_changed`                         → the overlay item's opacity only;
* `colormap_changed`, `threshold_changed`, `style_changed`
                                            → recolour the cached index image (LUT);
* `normalisation_changed`, `absolute_max_changed`
                                            → rebuild the index image from the cached raw CAM;
* `target_changed(CamTarget)`               → a new CAM (class, method or layer), the only
                                              change that may go back to the model.

A method/layer pair that cannot work (CAM away from the GAP input layer) is never offered:
choosing CAM pins the layer, so one user action is always exactly one `target_changed`.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QWidget,
)

from cxrviewer.core.inference.protocol import ModelInfo
from cxrviewer.core.model.layers import layer_label, split_layers
from cxrviewer.core.xai.cam import CAM, GRADCAM, METHOD_LABELS, METHODS
from cxrviewer.core.xai.overlay import COLORMAPS, NORMALISATION_MODES, colormap_lut, threshold_index
from cxrviewer.core.xai.overlay_style import (
    CONTOURS,
    DEFAULT_COLORMAP,
    DEFAULT_OPACITY,
    DEFAULT_THRESHOLD,
    HEATMAP,
)
from cxrviewer.state.overlay import CamTarget

TOP_CLASS_TEXT = "Model's call"
STRIP_HEIGHT = 14
PER_IMAGE_SCALE_TEXT = "of this map's max"
LABEL_GAP = 6      # pixels between the colour bar's labels
STYLE_LABELS = {HEATMAP: "Heat map", CONTOURS: "Contour lines"}
NORMALISATION_LABELS = {
    "per_image": "Per image",
    "absolute": "Absolute",
}


def format_scale_value(value: float) -> str:
    """A colour-bar number: 3 significant digits, no exponent for everyday values."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


class ColourBar(QWidget):
    """The colour map as a strip with its scale: 0 … max (absolute) or low … high (per image).

    Indices below the threshold are drawn as a checkerboard: they are transparent on the image.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colourBar")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._colormap = DEFAULT_COLORMAP
        self._threshold = DEFAULT_THRESHOLD
        self._absolute_max: float | None = None

    def sizeHint(self) -> QSize:
        return QSize(200, STRIP_HEIGHT + 4 + self.fontMetrics().height())

    def minimumSizeHint(self) -> QSize:
        """Never shorter than the strip plus one line of labels (layouts squeeze otherwise)."""
        return QSize(60, self.sizeHint().height())

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.update()

    def set_threshold(self, threshold: float) -> None:
        self._threshold = float(threshold)
        self.update()

    def set_scale(self, absolute_max: float | None) -> None:
        """None: per-image scale (labels low/high); a number: absolute scale 0 … number."""
        self._absolute_max = absolute_max
        self.update()

    def labels(self) -> tuple[str, str, str]:
        """Left, middle and right labels under the strip."""
        top = self._absolute_max
        if top is None:   # per image: 0 … the map's own maximum, whatever its raw size
            return "0 %", PER_IMAGE_SCALE_TEXT, "100 %"
        return "0", format_scale_value(top / 2.0), format_scale_value(top)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        strip = QRectF(1, 1, max(self.width() - 2, 1), STRIP_HEIGHT)
        # checkerboard under the strip shows where the overlay is transparent
        light, dark = QColor(200, 200, 200), QColor(140, 140, 140)
        cell = 5
        painter.save()
        painter.setClipRect(strip)
        for column in range(int(strip.width()) // cell + 1):
            for row in range(int(strip.height()) // cell + 1):
                painter.fillRect(
                    QRectF(strip.left() + column * cell, strip.top() + row * cell, cell, cell),
                    light if (column + row) % 2 == 0 else dark,
                )
        painter.restore()
        table = np.empty((1, 256, 4), np.uint8)
        table[0, :, :3] = colormap_lut(self._colormap)
        table[0, :, 3] = 255
        table[0, : threshold_index(self._threshold), 3] = 0
        image = QImage(table.data, 256, 1, 256 * 4, QImage.Format.Format_RGBA8888)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(strip, image)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawRect(strip.adjusted(-0.5, -0.5, 0.5, 0.5))
        left, middle, right = self.labels()
        text_rect = QRectF(0, strip.bottom() + 2, self.width(), self.height() - strip.bottom() - 2)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, left)
        if self.middle_label_fits():
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, middle)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, right)
        painter.end()

    def middle_label_fits(self) -> bool:
        """The middle label is drawn only where it clears the end labels (a narrow bar: the ends only)."""
        metrics = self.fontMetrics()
        left, middle, right = (metrics.horizontalAdvance(text) for text in self.labels())
        return middle + 2 * (max(left, right) + LABEL_GAP) <= self.width()


def _percent_slider(value: float, tip: str, parent: QWidget) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal, parent)
    slider.setRange(0, 100)
    slider.setSingleStep(1)
    slider.setPageStep(10)
    slider.setValue(round(value * 100))
    slider.setToolTip(tip)
    return slider


class OverlayControls(QWidget):
    """The heat-map section of the AI panel (see the module docstring for its signals)."""

    visibility_changed = Signal(bool)
    opacity_changed = Signal(float)
    colormap_changed = Signal(str)
    threshold_changed = Signal(float)
    style_changed = Signal(str)
    normalisation_changed = Signal(str)
    absolute_max_changed = Signal(float)
    target_changed = Signal(object)      # CamTarget

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("overlayControls")
        self._dense_cam_layer: str | None = None
        self._default_layer: str | None = None

        self.show_check = QCheckBox("Show heat map", self)
        self.show_check.setObjectName("showHeatMap")
        self.show_check.setChecked(True)

        self.opacity_slider = _percent_slider(DEFAULT_OPACITY, "Opacity of the heat map (no recomputation)", self)
        self.opacity_slider.setObjectName("opacitySlider")
        self.opacity_value = QLabel(self)
        self.threshold_slider = _percent_slider(
            DEFAULT_THRESHOLD, "Lower threshold: weaker parts of the map are transparent", self
        )
        self.threshold_slider.setObjectName("thresholdSlider")
        self.threshold_value = QLabel(self)
        for label in (self.opacity_value, self.threshold_value):
            label.setMinimumWidth(label.fontMetrics().horizontalAdvance("100 %") + 4)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self.colormap_combo = QComboBox(self)
        self.colormap_combo.setObjectName("colormapCombo")
        for name in COLORMAPS:
            self.colormap_combo.addItem(name, name)
        self.colormap_combo.setCurrentIndex(COLORMAPS.index(DEFAULT_COLORMAP))
        self.style_combo = QComboBox(self)
        self.style_combo.setObjectName("styleCombo")
        for style, text in STYLE_LABELS.items():
            self.style_combo.addItem(text, style)

        self.normalisation_combo = QComboBox(self)
        self.normalisation_combo.setObjectName("normalisationCombo")
        for mode in NORMALISATION_MODES:
            self.normalisation_combo.addItem(NORMALISATION_LABELS.get(mode, mode), mode)
        self.normalisation_combo.setToolTip(
            "Per image: the strongest part of every map is red, even for a weak finding.\n"
            "Absolute: one fixed scale for every image, so weak maps stay faint."
        )
        self.absolute_spin = QDoubleSpinBox(self)
        self.absolute_spin.setObjectName("absoluteMaxSpin")
        self.absolute_spin.setDecimals(4)
        self.absolute_spin.setRange(1e-4, 1e4)
        self.absolute_spin.setValue(1.0)
        self.absolute_spin.setKeyboardTracking(False)
        self.absolute_spin.setPrefix("max ")
        self.absolute_spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.absolute_spin.setToolTip("Top of the absolute scale (raw map units); the same for every image")
        self.absolute_spin.setEnabled(False)
        self.colour_bar = ColourBar(self)

        self.class_combo = QComboBox(self)
        self.class_combo.setObjectName("classCombo")
        self.class_combo.setToolTip("Class the heat map explains")
        self.method_combo = QComboBox(self)
        self.method_combo.setObjectName("methodCombo")
        self.layer_combo = QComboBox(self)
        self.layer_combo.setObjectName("layerCombo")
        self.layer_combo.setToolTip(
            "Layer the map is computed at. The ends of the dense blocks come first, coarse to fine "
            "(last block: the model's own view, coarsest grid); every other layer follows.")
        self.layer_combo.setMaxVisibleItems(20)
        # long labels must not widen the panel: the combo elides, its list shows them whole
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_combo.setMinimumContentsLength(14)
        for combo in (self.class_combo, self.method_combo, self.colormap_combo,
                      self.style_combo, self.normalisation_combo):   # not the layer box: it keeps its 14
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self.show_check)
        form.addRow("Opacity", self._with_value(self.opacity_slider, self.opacity_value))
        form.addRow("Threshold", self._with_value(self.threshold_slider, self.threshold_value))
        look = QHBoxLayout()
        look.setContentsMargins(0, 0, 0, 0)
        look.addWidget(self.colormap_combo, 1)
        look.addWidget(self.style_combo, 1)
        form.addRow("Colours", look)
        scale = QHBoxLayout()
        scale.setContentsMargins(0, 0, 0, 0)
        scale.addWidget(self.normalisation_combo, 2)
        scale.addWidget(self.absolute_spin, 1)
        form.addRow("Scale", scale)
        form.addRow("", self.colour_bar)
        form.addRow("Class", self.class_combo)
        form.addRow("Method", self.method_combo)
        form.addRow("Layer", self.layer_combo)

        self.set_model(None)
        self._update_value_labels()
        self.show_check.toggled.connect(self.visibility_changed)   # the check box's state is the intent itself
        self.opacity_slider.valueChanged.connect(self._on_opacity_slider_value_changed)
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider_value_changed)
        self.absolute_spin.valueChanged.connect(self._on_absolute_spin_value_changed)
        for combo, slot in ((self.colormap_combo, self._on_colormap_combo_current_index_changed),
                            (self.style_combo, lambda _index: self.style_changed.emit(self.style())),
                            (self.normalisation_combo, self._on_normalisation_combo_current_index_changed),
                            (self.method_combo, self._on_method_combo_current_index_changed),
                            (self.class_combo, self._on_target_combo_changed),
                            (self.layer_combo, self._on_target_combo_changed)):
            combo.currentIndexChanged.connect(slot)

    @staticmethod
    def _with_value(slider: QSlider, value: QLabel) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(slider, 1)
        row.addWidget(value)
        return row

    # ------------------------------------------------------------------------ model info
    def set_model(self, info: ModelInfo | None) -> None:
        """Fill class, method and layer choices from the loaded model (None: empty, disabled).

        Resets the target to the model's call and the card's layer, and keeps the method when the
        new model offers it (else Grad-CAM), without emitting `target_changed`: a new model
        re-runs the current image anyway.
        """
        previous_method = self.method_combo.currentData()
        labels: tuple[str, ...] = info.labels if info is not None else ()
        methods: tuple[str, ...] = (info.methods if info is not None else ()) or METHODS
        layers: tuple[str, ...] = info.conv_layers if info is not None else ()
        self._dense_cam_layer = info.dense_cam_layer if info is not None else None
        self._default_layer = (info.default_layer if info is not None else None) or (layers[0] if layers else None)
        for combo in (self.class_combo, self.method_combo, self.layer_combo):
            combo.blockSignals(True)
            combo.clear()
        self.class_combo.addItem(TOP_CLASS_TEXT, None)
        for index, label in enumerate(labels):
            self.class_combo.addItem(label, index)
        for method in methods:
            self.method_combo.addItem(METHOD_LABELS.get(method, method), method)
        wanted = previous_method if previous_method in methods else GRADCAM
        self.method_combo.setCurrentIndex(max(self.method_combo.findData(wanted), 0))
        grids = {name: (rows, cols) for name, rows, cols in (info.layer_grids if info is not None else ())}
        main, more = split_layers(layers, self._default_layer)
        for layer in main:
            self.layer_combo.addItem(layer_label(layer, grids, self._default_layer), layer)
        if main and more:
            self.layer_combo.insertSeparator(self.layer_combo.count())
        for layer in more:
            self.layer_combo.addItem(layer_label(layer, grids, self._default_layer), layer)
        view = self.layer_combo.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24 if self.layer_combo.count() else 0)
        if self._default_layer is not None:
            self.layer_combo.setCurrentIndex(max(self.layer_combo.findData(self._default_layer), 0))
        for combo in (self.class_combo, self.method_combo, self.layer_combo):
            combo.setEnabled(info is not None)
            combo.blockSignals(False)
        self._pin_layer_for_method()

    def set_top_label(self, label: str | None) -> None:
        """Show which class "Model's call" currently means (e.g. "Model's call (NORMAL)")."""
        self.class_combo.setItemText(0, f"{TOP_CLASS_TEXT} ({label})" if label else TOP_CLASS_TEXT)

    # ---------------------------------------------------------------------------- state
    def is_overlay_visible(self) -> bool:
        return self.show_check.isChecked()

    def set_overlay_visible(self, visible: bool) -> None:
        self.show_check.setChecked(visible)

    def opacity(self) -> float:
        return self.opacity_slider.value() / 100.0

    def set_opacity(self, opacity: float) -> None:
        self.opacity_slider.setValue(round(float(np.clip(opacity, 0.0, 1.0)) * 100))

    def threshold(self) -> float:
        return self.threshold_slider.value() / 100.0

    def set_threshold(self, threshold: float) -> None:
        self.threshold_slider.setValue(round(float(np.clip(threshold, 0.0, 1.0)) * 100))

    def colormap(self) -> str:
        return str(self.colormap_combo.currentData())

    def set_colormap(self, name: str) -> None:
        index = self.colormap_combo.findData(name)
        if index < 0:
            raise ValueError(f"unknown colour map {name!r}")
        self.colormap_combo.setCurrentIndex(index)

    def style(self) -> str:
        return str(self.style_combo.currentData())

    def set_style(self, style: str) -> None:
        self.style_combo.setCurrentIndex(max(self.style_combo.findData(style), 0))

    def normalisation(self) -> str:
        return str(self.normalisation_combo.currentData())

    def set_normalisation(self, mode: str) -> None:
        self.normalisation_combo.setCurrentIndex(max(self.normalisation_combo.findData(mode), 0))

    def absolute_max(self) -> float:
        return float(self.absolute_spin.value())

    def show_absolute_max(self, value: float) -> None:
        """Display the absolute scale's top (chosen by the controller) without emitting a change."""
        self.absolute_spin.blockSignals(True)
        self.absolute_spin.setValue(float(value))
        self.absolute_spin.blockSignals(False)
        self._update_colour_bar()

    def target(self) -> CamTarget:
        class_index = self.class_combo.currentData()
        method = self.method_combo.currentData() or GRADCAM
        layer = self.layer_combo.currentData()
        return CamTarget(None if class_index is None else int(class_index), str(method), layer)

    def set_target(self, target: CamTarget) -> None:
        """Select class, method and layer; emits `target_changed` once if anything changed."""
        before = self.target()
        for combo in (self.class_combo, self.method_combo, self.layer_combo):
            combo.blockSignals(True)
        self.class_combo.setCurrentIndex(max(self.class_combo.findData(target.class_index), 0))
        self.method_combo.setCurrentIndex(max(self.method_combo.findData(target.method), 0))
        if target.layer is not None:
            self.layer_combo.setCurrentIndex(max(self.layer_combo.findData(target.layer), 0))
        for combo in (self.class_combo, self.method_combo, self.layer_combo):
            combo.blockSignals(False)
        self._pin_layer_for_method()
        if self.target() != before:
            self.target_changed.emit(self.target())

    # ---------------------------------------------------------------------------- slots
    def _on_opacity_slider_value_changed(self, _value: int) -> None:
        self._update_value_labels()
        self.opacity_changed.emit(self.opacity())

    def _on_threshold_slider_value_changed(self, _value: int) -> None:
        self._update_value_labels()
        self.colour_bar.set_threshold(self.threshold())
        self.threshold_changed.emit(self.threshold())

    def _on_colormap_combo_current_index_changed(self, _index: int) -> None:
        self.colour_bar.set_colormap(self.colormap())
        self.colormap_changed.emit(self.colormap())

    def _on_normalisation_combo_current_index_changed(self, _index: int) -> None:
        self.absolute_spin.setEnabled(self.normalisation() == "absolute")
        self._update_colour_bar()
        self.normalisation_changed.emit(self.normalisation())

    def _on_absolute_spin_value_changed(self, value: float) -> None:
        self._update_colour_bar()
        self.absolute_max_changed.emit(float(value))

    def _on_method_combo_current_index_changed(self, _index: int) -> None:
        self._pin_layer_for_method()
        self.target_changed.emit(self.target())

    def _on_target_combo_changed(self, _index: int) -> None:
        self.target_changed.emit(self.target())

    # -------------------------------------------------------------------------- helpers
    def _pin_layer_for_method(self) -> None:
        """CAM (Dense weights) only exists at the GAP input layer: select it and lock the combo."""
        is_cam = self.method_combo.currentData() == CAM
        if is_cam and self._dense_cam_layer is not None:
            self.layer_combo.blockSignals(True)
            self.layer_combo.setCurrentIndex(max(self.layer_combo.findData(self._dense_cam_layer), 0))
            self.layer_combo.blockSignals(False)
        self.layer_combo.setEnabled(self.layer_combo.count() > 0 and not is_cam)

    def _update_value_labels(self) -> None:
        self.opacity_value.setText(f"{self.opacity_slider.value()} %")
        self.threshold_value.setText(f"{self.threshold_slider.value()} %")

    def _update_colour_bar(self) -> None:
        absolute = self.normalisation() == "absolute"
        self.colour_bar.set_scale(self.absolute_max() if absolute else None)
