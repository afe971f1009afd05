"""The heat-map overlay item and its controls, without a model: registration, LUT recolouring, signals."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF

from cxrviewer.core.types import Window
from cxrviewer.core.xai.cam import CAM, GRADCAM, HIRESCAM, METHODS
from cxrviewer.core.xai.overlay import colorize, colormap_lut
from cxrviewer.core.xai.overlay_style import (
    CONTOURS,
    HEATMAP,
    OVERLAY_MAX_SIDE,
    contour_levels,
    overlay_rgba,
    overlay_shape,
)
from cxrviewer.ui.docks.overlay_controls import CamTarget, ColourBar, OverlayControls
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.overlay_item import CamOverlayItem
from cxrviewer.ui.workers.inference_service import ModelInfo

from .helpers import make_xray
from .image_compare import qimage_to_rgb

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
LAYERS = ("relu", "pool2_pool", "conv2_relu")


def model_info() -> ModelInfo:
    return ModelInfo(name="fake", labels=LABELS, conv_layers=LAYERS, device="CPU", default_layer="relu",
                     methods=METHODS, dense_cam_layer="relu")


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(make_xray(np.zeros((200, 300), np.float32), window=Window(100, 200)))
    view.flush_render()
    return view


def quadrant_index(rows: int = 100, cols: int = 150) -> np.ndarray:
    """Index image hot (255) in its top-left quadrant only."""
    index = np.zeros((rows, cols), np.uint8)
    index[: rows // 2, : cols // 2] = 255
    return index


# ---------------------------------------------------------------------------- drawing policy
def test_overlay_shape_caps_large_images_and_keeps_small_ones() -> None:
    assert overlay_shape((200, 300)) == (200, 300)
    rows, cols = overlay_shape((3000, 2000))
    assert rows == OVERLAY_MAX_SIDE and cols == round(2000 * OVERLAY_MAX_SIDE / 3000)


def test_contour_levels_follow_the_threshold() -> None:
    assert contour_levels(0.0) == (0.2, 0.4, 0.6, 0.8)
    assert contour_levels(0.2) == (0.2, 0.4, 0.6, 0.8)
    assert contour_levels(0.3) == (0.3, 0.4, 0.6, 0.8)
    assert contour_levels(0.9) == (0.9,)


def test_a_threshold_beside_a_fixed_contour_level_draws_one_line_not_two() -> None:
    """#13: threshold 0.58–0.59 drew its own line a pixel or two inside the 0.6 level (a doubled line)."""
    for threshold in (0.56, 0.58, 0.59, 0.6, 0.61):
        levels = contour_levels(threshold)
        assert levels[0] == threshold
        assert all(b - a >= 0.05 - 1e-9 for a, b in zip(levels, levels[1:])), (threshold, levels)
    assert contour_levels(0.59) == (0.59, 0.8)
    # drawn: the threshold ring and the 0.8 ring, nothing in between
    from cxrviewer.core.xai.overlay import contour_rgba

    yy, xx = np.mgrid[0:200, 0:200]
    index = np.clip(255 - np.hypot(yy - 100, xx - 100) * 2.0, 0, 255).astype(np.uint8)
    expected = contour_rgba(index, (0.59, 0.8), colormap_lut("inferno"), 2)
    np.testing.assert_array_equal(overlay_rgba(index, "inferno", 0.59, CONTOURS), expected)


def test_default_heat_map_leaves_the_anatomy_visible() -> None:
    """#13: a perceptually uniform map, a light touch and the weak part of the map transparent."""
    from cxrviewer.core.xai import overlay_style

    assert overlay_style.DEFAULT_COLORMAP == "inferno"
    assert overlay_style.DEFAULT_OPACITY <= 0.35 and overlay_style.DEFAULT_THRESHOLD >= 0.4


# ------------------------------------------------------------------------------ overlay item
def test_overlay_is_registered_under_zoom_rotation_and_flip(qtbot, canvas: ImageCanvas) -> None:
    item = canvas.add_overlay_item(CamOverlayItem())
    item.set_colormap("jet")   # the colours below are jet's (the default is inferno)
    item.set_threshold(0.5)
    item.setOpacity(1.0)
    item.set_index_image(quadrant_index(), (200, 300), "key-1")   # half resolution, scaled by the item
    assert item.mapRectToParent(item.boundingRect()) == QRectF(0, 0, 300, 200)
    hot, cold = QPointF(75, 50), QPointF(225, 150)     # centres of the top-left / bottom-right quadrants

    def colour_at(point: QPointF) -> np.ndarray:
        canvas.flush_render()
        shot = qimage_to_rgb(canvas.viewport().grab())
        p = canvas.image_to_viewport(point)
        return shot[int(p.y()), int(p.x())].astype(int)

    for change in (lambda: None, canvas.rotate_clockwise, canvas.flip_horizontal, lambda: canvas.set_zoom(2.5)):
        change()
        hot_rgb, cold_rgb = colour_at(hot), colour_at(cold)
        assert hot_rgb[0] > 100 and hot_rgb[1] < 40 and hot_rgb[2] < 40, hot_rgb   # jet at 1.0: dark red
        assert cold_rgb.max() < 10, cold_rgb                                        # black image, no map


def test_threshold_and_colormap_recolour_through_the_lut(qtbot, canvas: ImageCanvas) -> None:
    item = canvas.add_overlay_item(CamOverlayItem())
    index = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    item.set_index_image(index, (200, 300), "key")
    assert item.recolour_count == 1
    np.testing.assert_array_equal(item.rgba(), colorize(index, colormap_lut("inferno"), item.threshold()))

    item.setOpacity(0.8)                      # opacity: the item's property, no recolour
    assert item.recolour_count == 1 and item.opacity() == pytest.approx(0.8)
    item.set_threshold(0.5)
    assert item.recolour_count == 2
    alpha = item.rgba()[0, :, 3]
    assert alpha[:127].max() == 0 and alpha[128:].min() == 255
    item.set_threshold(0.5)                   # unchanged: nothing to do
    assert item.recolour_count == 2
    item.set_colormap("jet")                  # still offered, no longer the default
    assert item.recolour_count == 3
    np.testing.assert_array_equal(item.rgba(), colorize(index, colormap_lut("jet"), 0.5))
    with pytest.raises(ValueError):
        item.set_colormap("rainbow-unicorn")
    assert item.colormap() == "jet"


def test_contour_style_draws_lines_only(qtbot, canvas: ImageCanvas) -> None:
    item = canvas.add_overlay_item(CamOverlayItem())
    yy, xx = np.mgrid[0:100, 0:150]
    blob = np.exp(-((yy - 50) ** 2 + (xx - 75) ** 2) / 3000.0)
    index = (blob * 255).astype(np.uint8)
    item.set_index_image(index, (200, 300), "key")
    filled = int((item.rgba()[..., 3] > 0).sum())
    item.set_style(CONTOURS)
    lines = item.rgba()[..., 3] > 0
    assert 0 < lines.sum() < filled / 2
    assert not lines[50, 75]                  # the centre of the blob is inside the lines, not on one
    np.testing.assert_array_equal(item.rgba(), overlay_rgba(index, "inferno", item.threshold(), CONTOURS))
    item.set_style(HEATMAP)
    assert int((item.rgba()[..., 3] > 0).sum()) == filled


def test_clear_forgets_the_image(qtbot, canvas: ImageCanvas) -> None:
    item = canvas.add_overlay_item(CamOverlayItem())
    item.set_index_image(quadrant_index(), (200, 300), "key-1")
    assert item.has_overlay() and item.image_key() == "key-1"
    item.clear()
    assert not item.has_overlay() and item.image_key() == "" and item.pixmap().isNull()


# -------------------------------------------------------------------------------- controls
@pytest.fixture
def controls(qtbot) -> OverlayControls:
    widget = OverlayControls()
    qtbot.addWidget(widget)
    widget.set_model(model_info())
    widget.show()
    return widget


def record(controls: OverlayControls) -> dict[str, list]:
    seen: dict[str, list] = {}
    for name in ("visibility_changed", "opacity_changed", "colormap_changed", "threshold_changed",
                 "style_changed", "normalisation_changed", "absolute_max_changed", "target_changed"):
        seen[name] = []
        getattr(controls, name).connect(seen[name].append)
    return seen


def test_each_control_emits_only_its_own_signal(controls: OverlayControls) -> None:
    seen = record(controls)
    controls.opacity_slider.setValue(70)
    controls.threshold_slider.setValue(35)
    controls.set_colormap("viridis")
    controls.set_style(CONTOURS)
    controls.show_check.setChecked(False)
    assert seen["opacity_changed"] == [pytest.approx(0.7)]
    assert seen["threshold_changed"] == [pytest.approx(0.35)]
    assert seen["colormap_changed"] == ["viridis"] and seen["style_changed"] == [CONTOURS]
    assert seen["visibility_changed"] == [False]
    assert seen["target_changed"] == []


def test_class_method_and_layer_each_emit_one_target_change(controls: OverlayControls) -> None:
    seen = record(controls)
    assert controls.target() == CamTarget(None, GRADCAM, "relu")
    controls.class_combo.setCurrentIndex(controls.class_combo.findData(2))
    assert seen["target_changed"] == [CamTarget(2, GRADCAM, "relu")]
    controls.layer_combo.setCurrentIndex(controls.layer_combo.findData("conv2_relu"))
    controls.method_combo.setCurrentIndex(controls.method_combo.findData(HIRESCAM))
    assert seen["target_changed"][1:] == [CamTarget(2, GRADCAM, "conv2_relu"), CamTarget(2, HIRESCAM, "conv2_relu")]


def test_cam_method_pins_the_gap_layer_in_one_change(controls: OverlayControls) -> None:
    controls.layer_combo.setCurrentIndex(controls.layer_combo.findData("conv2_relu"))
    seen = record(controls)
    controls.method_combo.setCurrentIndex(controls.method_combo.findData(CAM))
    assert seen["target_changed"] == [CamTarget(None, CAM, "relu")]
    assert not controls.layer_combo.isEnabled()
    controls.method_combo.setCurrentIndex(controls.method_combo.findData(GRADCAM))
    assert controls.layer_combo.isEnabled()


def test_without_a_model_the_target_choices_are_disabled(controls: OverlayControls) -> None:
    controls.set_model(None)
    assert not controls.class_combo.isEnabled() and not controls.layer_combo.isEnabled()
    assert controls.class_combo.count() == 1


def test_absolute_scale_shows_numbers_on_the_colour_bar(controls: OverlayControls) -> None:
    seen = record(controls)
    assert controls.colour_bar.labels() == ("0 %", "of this map's max", "100 %")
    assert controls.colormap() == "inferno" and "jet" in [controls.colormap_combo.itemData(i)
                                                          for i in range(controls.colormap_combo.count())]
    assert not controls.absolute_spin.isEnabled()
    controls.set_normalisation("absolute")
    assert seen["normalisation_changed"] == ["absolute"] and controls.absolute_spin.isEnabled()
    controls.show_absolute_max(0.5)           # set by the controller: no signal
    assert seen["absolute_max_changed"] == []
    assert controls.colour_bar.labels() == ("0", "0.25", "0.5")
    controls.absolute_spin.setValue(2.0)      # the user's edit: a signal
    assert seen["absolute_max_changed"] == [2.0]
    assert controls.colour_bar.labels() == ("0", "1", "2")


def test_colour_bar_draws_the_colour_map_and_the_transparent_part(qtbot) -> None:
    bar = ColourBar()
    qtbot.addWidget(bar)
    bar.resize(258, bar.sizeHint().height())
    bar.set_colormap("hot")
    bar.set_threshold(0.5)
    shot = qimage_to_rgb(bar.grab())
    row = shot[8]
    right = row[250].astype(int)
    assert right.min() > 200                  # "hot" ends in white
    left = row[5:60]
    assert len({tuple(p) for p in left}) <= 3  # checkerboard grays, not colours


def test_a_narrow_colour_bar_keeps_its_end_labels_and_drops_the_middle_one(qtbot) -> None:
    """The on-image legend shrinks on a narrow pane: its labels never run into each other."""
    bar = ColourBar()
    qtbot.addWidget(bar)
    bar.resize(300, bar.sizeHint().height())
    assert bar.middle_label_fits()
    bar.resize(110, bar.sizeHint().height())          # "0 %", "of this map's max", "100 %" do not fit
    assert not bar.middle_label_fits()
    bar.set_scale(2.5)                               # absolute: "0", "1.25", "2.5" are short
    assert bar.middle_label_fits()


def test_a_new_model_keeps_the_method_and_resets_class_and_layer(controls: OverlayControls) -> None:
    controls.class_combo.setCurrentIndex(controls.class_combo.findData(1))
    controls.layer_combo.setCurrentIndex(controls.layer_combo.findData("conv2_relu"))
    controls.method_combo.setCurrentIndex(controls.method_combo.findData(HIRESCAM))
    seen = record(controls)
    controls.set_model(None)      # while the next model loads
    controls.set_model(model_info())
    assert controls.target() == CamTarget(None, HIRESCAM, "relu")
    assert seen["target_changed"] == []


def test_layer_chooser_puts_the_dense_block_ends_first_with_their_grids(controls: OverlayControls) -> None:
    densenet_like = ("relu", "conv5_block16_concat", "conv5_block16_1_relu", "pool4_relu",
                     "conv4_block24_concat", "pool3_relu", "pool2_relu", "conv1_relu")
    grids = (("relu", 6, 6), ("conv5_block16_concat", 6, 6), ("conv5_block16_1_relu", 6, 6),
             ("pool4_relu", 12, 12), ("conv4_block24_concat", 12, 12), ("pool3_relu", 24, 24),
             ("pool2_relu", 48, 48), ("conv1_relu", 96, 96))
    controls.set_model(ModelInfo(name="dense", labels=LABELS, conv_layers=densenet_like, device="CPU",
                                 default_layer="relu", layer_grids=grids))
    combo = controls.layer_combo
    data = [combo.itemData(i) for i in range(combo.count())]
    separator = data.index(None)
    assert data[:separator] == ["relu", "pool4_relu", "pool3_relu", "pool2_relu"]
    assert data[separator + 1:] == ["conv5_block16_concat", "conv5_block16_1_relu", "conv4_block24_concat", "conv1_relu"]
    assert combo.itemText(0) == "relu — end of the last dense block, 6 × 6 (model card)"
    assert combo.itemText(data.index("pool3_relu")) == "pool3_relu — end of dense block 2, 24 × 24"
    assert combo.itemText(data.index("conv1_relu")) == "conv1_relu — 96 × 96"
    assert combo.currentData() == "relu"
    combo.setCurrentIndex(data.index("pool2_relu"))
    assert controls.target().layer == "pool2_relu"
