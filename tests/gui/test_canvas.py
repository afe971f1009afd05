"""ImageCanvas on its own: window/level, zoom, orientation, invert, readout, ruler, overlays."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem

from cxrviewer.core.imaging import apply_window
from cxrviewer.core.types import SpacingKind, Window
from cxrviewer.ui.viewer import canvas as canvas_module
from cxrviewer.ui.viewer.canvas import WINDOW_DRAG_PIXELS, ImageCanvas, orientation_summary
from cxrviewer.ui.viewer.corner_text import ANONYMISED_PLACEHOLDER

from .helpers import drag, hover, make_xray
from .synthetic import gradient

METADATA = {
    "PatientName": "Doe, Jane",
    "PatientID": "PID-12345",
    "PatientBirthDate": "1970-01-02",
    "PatientSex": "F",
    "AccessionNumber": "ACC-777",
    "InstitutionName": "Teaching Hospital",
    "StudyDate": "2024-03-15",
    "StudyDescription": "Chest PA",
    "Modality": "CR",
    "ViewPosition": "PA",
}


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def image():
    return make_xray(gradient(200, 300), window=Window(2000, 4000), metadata=METADATA)


def corner_map(view: ImageCanvas, x: float, y: float) -> QPointF:
    """Where image point (x, y) lands in scene coordinates."""
    return view.image_item().parentItem().mapToScene(QPointF(x, y))


def test_set_image_fits_and_renders_default_window(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    assert canvas.window() == Window(2000, 4000)
    assert canvas.is_fit_mode()
    # 300×200 in 400×300: width limits, zoom = 400/300.
    assert canvas.zoom() == pytest.approx(400 / 300, rel=1e-3)
    expected = apply_window(image.pixels, image.default_window)
    np.testing.assert_array_equal(canvas.display_array(), expected)


def test_right_drag_changes_width_and_level(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    start = Window(2000, 4000)
    viewport = canvas.viewport()
    drag(viewport, Qt.MouseButton.RightButton, QPointF(100, 100), QPointF(164, 132))
    window = canvas.window()
    assert window.width == pytest.approx(start.width * 2 ** (64 / WINDOW_DRAG_PIXELS))
    assert window.center == pytest.approx(start.center + start.width * 32 / WINDOW_DRAG_PIXELS)
    # The release renders the final window.
    np.testing.assert_array_equal(canvas.display_array(), apply_window(image.pixels, window))


def test_window_drag_sensitivity_scales_with_width(canvas: ImageCanvas) -> None:
    narrow = make_xray(gradient(), window=Window(100, 40))
    canvas.set_image(narrow)
    drag(canvas.viewport(), Qt.MouseButton.RightButton, QPointF(50, 50), QPointF(50, 50 + WINDOW_DRAG_PIXELS))
    assert canvas.window().center == pytest.approx(100 + 40)


def test_interactive_window_changes_are_throttled(canvas: ImageCanvas, image, qtbot, monkeypatch) -> None:
    canvas.set_image(image)
    calls = []
    real = canvas_module.apply_window

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(canvas_module, "apply_window", counting)
    for i in range(50):
        canvas.set_window(Window(2000 + i, 3000), interactive=True)
    assert calls == []            # nothing rendered synchronously
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=2000)
    qtbot.wait(50)
    assert len(calls) == 1        # one render for fifty moves
    assert calls[0] == Window(2049, 3000)


def test_a_pyramid_built_off_the_gui_thread_is_used_not_recomputed(canvas: ImageCanvas, monkeypatch) -> None:
    from cxrviewer.core import pyramid

    big = make_xray(np.tile(gradient(1500, 1500), (2, 2)), window=Window(2000, 4000))
    ready = pyramid.build_pyramid(big.pixels)     # what the loader thread does
    pyramid.attach(big, ready)

    def no_resize(*args, **kwargs):
        raise AssertionError("the canvas downsampled on the GUI thread although a pyramid was ready")

    monkeypatch.setattr(canvas_module, "downsample", no_resize)
    monkeypatch.setattr(canvas_module, "full_range_window", no_resize)
    canvas.set_image(big)
    level = canvas.display_level()
    assert level >= 4
    np.testing.assert_array_equal(canvas.display_array(), apply_window(ready.levels[level], Window(2000, 4000)))


def test_big_image_renders_a_smaller_pyramid_level(canvas: ImageCanvas) -> None:
    big = make_xray(np.tile(gradient(1500, 1500), (2, 2)), window=Window(2000, 4000))
    canvas.set_image(big)
    assert canvas.display_level() >= 4
    shown = canvas.display_array()
    assert shown.shape[0] <= 3000 // 4 + 1
    # The pixmap still spans the full image in image coordinates (overlays stay registered).
    rect = canvas.image_item().mapRectToParent(canvas.image_item().boundingRect())
    assert rect == QRectF(0, 0, 3000, 3000)
    canvas.zoom_actual_size()
    canvas.flush_render()
    assert canvas.display_level() == 1
    assert canvas.display_array().shape == (3000, 3000)


def test_zoom_fit_and_actual_size(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    canvas.zoom_actual_size()
    assert canvas.zoom() == pytest.approx(1.0)
    assert not canvas.is_fit_mode()
    canvas.zoom_in()
    assert canvas.zoom() == pytest.approx(1.25)
    canvas.zoom_out()
    canvas.zoom_out()
    assert canvas.zoom() == pytest.approx(0.8)
    canvas.fit_to_window()
    assert canvas.is_fit_mode()
    bounds = canvas.mapFromScene(canvas.image_item().sceneBoundingRect()).boundingRect()
    assert canvas.viewport().rect().adjusted(-2, -2, 2, 2).contains(bounds)
    assert bounds.width() >= canvas.viewport().width() - 3


def test_wheel_zoom_keeps_point_under_cursor(canvas: ImageCanvas, image, qtbot) -> None:
    canvas.set_image(image)
    canvas.zoom_actual_size()
    anchor = QPointF(120, 90)
    before = canvas.viewport_to_image(anchor)
    canvas.set_zoom(canvas.zoom() * 2, anchor)
    after = canvas.viewport_to_image(anchor)
    assert after.x() == pytest.approx(before.x(), abs=1.0)
    assert after.y() == pytest.approx(before.y(), abs=1.0)


def test_fit_mode_survives_resize(canvas: ImageCanvas, image, qtbot) -> None:
    canvas.set_image(image)
    canvas.resize(600, 300)
    qtbot.waitUntil(lambda: canvas.zoom() == pytest.approx(300 / 200, rel=1e-3), timeout=2000)


def test_invert_flips_rendered_pixels(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    before = canvas.display_array().copy()
    grab_before = canvas.grab().toImage().pixelColor(canvas.viewport().rect().center())
    canvas.set_inverted(True)
    np.testing.assert_array_equal(canvas.display_array(), 255 - before)
    grab_after = canvas.grab().toImage().pixelColor(canvas.viewport().rect().center())
    assert abs(grab_after.red() - (255 - grab_before.red())) <= 2


def test_invert_is_xor_with_monochrome1(canvas: ImageCanvas) -> None:
    mono1 = make_xray(gradient(), window=Window(2000, 4000), invert_for_display=True)
    canvas.set_image(mono1)
    assert canvas.effective_invert()
    assert canvas.display_array()[0, 0] == 255     # lowest value shown white
    canvas.set_inverted(True)
    assert not canvas.effective_invert()
    assert canvas.display_array()[0, 0] == 0


def test_rotate_and_flip_transform_the_image_item(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    w, h = 300, 200
    origin = corner_map(canvas, 0, 0)
    far_x = corner_map(canvas, w, 0)
    assert far_x.x() - origin.x() == pytest.approx(w)

    canvas.rotate_clockwise()
    # Clockwise: the image's x axis now points down the screen.
    a, b = corner_map(canvas, 0, 0), corner_map(canvas, w, 0)
    assert b.y() - a.y() == pytest.approx(w)
    assert b.x() == pytest.approx(a.x())
    assert orientation_summary(canvas.orientation()) == (90, False)
    assert canvas.image_item().sceneBoundingRect().width() == pytest.approx(h)

    canvas.rotate_counterclockwise()
    assert canvas.orientation() == (1, 0, 0, 1)

    canvas.flip_horizontal()
    a, b = corner_map(canvas, 0, 0), corner_map(canvas, w, 0)
    assert a.x() - b.x() == pytest.approx(w)          # x axis now points left
    canvas.flip_vertical()
    a, c = corner_map(canvas, 0, 0), corner_map(canvas, 0, h)
    assert a.y() - c.y() == pytest.approx(h)          # y axis now points up
    assert orientation_summary(canvas.orientation()) == (180, False)

    canvas.reset_view()
    assert canvas.orientation() == (1, 0, 0, 1)
    assert canvas.window() == image.default_window


def test_rotate_after_flip_still_turns_clockwise_on_screen(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    canvas.flip_horizontal()
    canvas.rotate_clockwise()
    # The image x axis pointed left after the flip; clockwise on screen turns left into up.
    a, b = corner_map(canvas, 0, 0), corner_map(canvas, 100, 0)
    assert a.y() - b.y() == pytest.approx(100)
    assert orientation_summary(canvas.orientation())[1] is True


def test_rendered_view_follows_flip(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)      # ramp: dark on the left, bright on the right
    rect = canvas.viewport().rect()
    row = rect.center().y()

    def brightness(x: int) -> int:
        return canvas.grab().toImage().pixelColor(x, row).red()

    left, right = rect.left() + 20, rect.right() - 20
    assert brightness(left) < brightness(right)
    canvas.flip_horizontal()
    assert brightness(left) > brightness(right)


def test_pixel_readout_for_known_pixel(canvas: ImageCanvas, qtbot) -> None:
    pixels = np.zeros((50, 60), dtype=np.float32)
    pixels[21, 37] = 1234.5
    canvas.set_image(make_xray(pixels, window=Window(500, 1000)))
    canvas.zoom_actual_size()
    target = canvas.image_to_viewport(QPointF(37.5, 21.5))
    with qtbot.waitSignal(canvas.pixel_hovered) as blocker:
        hover(canvas.viewport(), target)
    readout = blocker.args[0]
    assert (readout.x, readout.y, readout.value) == (37, 21, 1234.5)
    assert readout.text == "x 37  y 21  value 1234.5"
    with qtbot.waitSignal(canvas.pixel_hovered) as blocker:
        hover(canvas.viewport(), QPointF(1, 1))   # outside the image (letterbox)
    assert blocker.args[0] is None or blocker.args[0].value == 0.0


@pytest.mark.parametrize(
    ("spacing", "kind", "expected"),
    [
        ((0.5, 0.5), SpacingKind.PATIENT, "50.0 mm"),
        ((0.5, 0.5), SpacingKind.DETECTOR, "50.0 mm at detector"),
        (None, SpacingKind.NONE, "100.0 px"),
    ],
)
def test_ruler_drag_measures(canvas: ImageCanvas, qtbot, spacing, kind, expected) -> None:
    canvas.resize(500, 400)
    canvas.set_image(make_xray(gradient(300, 300), window=Window(2000, 4000),
                               pixel_spacing=spacing, spacing_kind=kind))
    canvas.zoom_actual_size()
    canvas.set_ruler_enabled(True)
    start = canvas.image_to_viewport(QPointF(50, 60))
    end = canvas.image_to_viewport(QPointF(150, 60))
    with qtbot.waitSignal(canvas.measurement_added) as blocker:
        drag(canvas.viewport(), Qt.MouseButton.LeftButton, start, end)
    assert blocker.args[0].text == expected
    assert canvas.rulers()[0].label_text() == expected


def test_ruler_survives_rotation_and_left_drag_pans_without_ruler(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    canvas.zoom_actual_size()
    canvas.set_ruler_enabled(True)
    drag(canvas.viewport(), Qt.MouseButton.LeftButton,
         canvas.image_to_viewport(QPointF(10, 10)), canvas.image_to_viewport(QPointF(40, 50)))
    assert canvas.measurements()[0].text == "50.0 px"
    canvas.rotate_clockwise()
    assert canvas.measurements()[0].text == "50.0 px"
    canvas.set_ruler_enabled(False)
    before = canvas.viewport_to_image(QPointF(100, 100))
    drag(canvas.viewport(), Qt.MouseButton.LeftButton, QPointF(100, 100), QPointF(140, 100))
    after = canvas.viewport_to_image(QPointF(100, 100))
    assert (before - after).manhattanLength() == pytest.approx(40, abs=1.5)
    assert len(canvas.rulers()) == 1


def test_middle_drag_pans(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    canvas.zoom_actual_size()
    before = canvas.viewport_to_image(QPointF(50, 50))
    drag(canvas.viewport(), Qt.MouseButton.MiddleButton, QPointF(50, 50), QPointF(50, 80))
    after = canvas.viewport_to_image(QPointF(50, 50))
    assert before.y() - after.y() == pytest.approx(30, abs=1)


def test_overlay_item_stays_registered(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    pixmap = QPixmap(7, 7)
    pixmap.fill(QColor(255, 0, 0))
    overlay = QGraphicsPixmapItem(pixmap)
    overlay.setTransform(QTransform.fromScale(300 / 7, 200 / 7))
    canvas.add_overlay_item(overlay)
    for action in (canvas.zoom_in, canvas.rotate_clockwise, canvas.flip_horizontal, canvas.fit_to_window):
        action()
        assert overlay.sceneBoundingRect() == canvas.image_item().sceneBoundingRect()
    assert overlay.zValue() > canvas.image_item().zValue()
    canvas.remove_overlay_item(overlay)
    assert overlay.scene() is None


def test_corner_text_and_anonymise(canvas: ImageCanvas, image) -> None:
    canvas.set_image(image)
    lines = canvas.corner_text().all_lines()
    joined = "\n".join(lines)
    for shown in ("Doe, Jane", "PID-12345", "1970-01-02", "ACC-777", "Teaching Hospital", "CR  PA", "C 2000  W 4000"):
        assert shown in joined
    assert any(line.startswith("Zoom ") for line in lines)
    canvas.set_anonymise(True)
    joined = "\n".join(canvas.corner_text().all_lines())
    for hidden in ("Doe", "PID-12345", "1970-01-02", "ACC-777", "Teaching Hospital"):
        assert hidden not in joined
    assert ANONYMISED_PLACEHOLDER in joined
    assert "2024-03-15" in joined and "CR  PA" in joined


def test_empty_canvas_shows_a_hint(canvas: ImageCanvas) -> None:
    assert canvas.image() is None
    canvas.zoom_in()          # no image: nothing happens, nothing raises
    canvas.rotate_clockwise()
    canvas.grab()


def test_a_ruler_dragged_to_the_right_edge_keeps_its_label_on_the_image(canvas: ImageCanvas, qtbot) -> None:
    canvas.resize(500, 400)
    canvas.set_image(make_xray(gradient(300, 300), window=Window(2000, 4000)))
    canvas.fit_to_window()
    canvas.set_ruler_enabled(True)
    start = canvas.image_to_viewport(QPointF(150, 150))
    end = canvas.image_to_viewport(QPointF(299, 150))                # the right edge
    with qtbot.waitSignal(canvas.measurement_added):
        drag(canvas.viewport(), Qt.MouseButton.LeftButton, start, end)
    ruler = canvas.rulers()[0]
    label = ruler._label
    anchor = canvas.mapFromScene(label.mapToScene(QPointF(0, 0)))
    width = label.boundingRect().right()
    assert anchor.x() + width <= canvas.viewport().width()           # the text is not cut at the edge
    assert abs(anchor.x() - start.x()) < 2                           # anchored at the left end
