"""The angle tool (Tools › Angle, A): three clicks (or a dragged first arm and a click) give the angle at
the vertex in degrees, in image coordinates; it stays right under rotation and flips, takes turns with
the ruler, is cleared with the measurements, and is on the shortcut sheet."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt

from cxrviewer.ui.dialogs.shortcut_sheet import shortcut_rows
from cxrviewer.ui.viewer.measure import measure_angle

from .helpers import drag, open_and_wait, send_mouse
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot
from .synthetic import write_png


def click(window, x: float, y: float) -> None:
    """A left click at image point (x, y), wherever the view has put it on screen."""
    viewport = window.canvas.viewport()
    point = window.canvas.image_to_viewport(QPointF(x, y))
    send_mouse(viewport, QEvent.Type.MouseButtonPress, point, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, point, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


def on_screen_angle(window, item) -> float:
    """The angle between the arms as drawn on screen (after zoom, rotation, flips)."""
    first, vertex, second = (item.mapToScene(p) for p in item.points())
    view = window.canvas
    a, b, c = (view.mapFromScene(p) for p in (first, vertex, second))
    return measure_angle((a.x(), a.y()), (b.x(), b.y()), (c.x(), c.y())).degrees


@pytest.fixture
def opened(qtbot, make_window, tmp_path):
    path = tmp_path / "plain.png"
    write_png(path, np.full((200, 200), 90, np.uint8))
    window = make_window(size=(1000, 800))
    open_and_wait(qtbot, window, [path])
    return window


def test_three_clicks_give_the_angle_and_it_survives_rotation_and_flips(opened):
    window, tool = opened, opened.angle_tool
    tool.action.trigger()                            # A
    assert tool.is_enabled()
    with_right_angle = [(150, 100), (100, 100), (100, 40)]
    for x, y in with_right_angle:
        click(window, x, y)
    assert [a.label_text() for a in tool.angles()] == ["90.0°"]
    assert window.statusBar().currentMessage() == "Angle: 90.0°"
    for x, y in [(160, 160), (100, 160), (160, 100)]:   # 45° at (100, 160)
        click(window, x, y)
    assert [m.text for m in tool.measurements()] == ["90.0°", "45.0°"]
    for step in (window.canvas.rotate_clockwise, lambda: window.canvas.flip_horizontal(),
                 window.canvas.rotate_clockwise, lambda: window.canvas.flip_vertical()):
        step()
        assert [a.label_text() for a in tool.angles()] == ["90.0°", "45.0°"]
        assert on_screen_angle(window, tool.angles()[0]) == pytest.approx(90.0, abs=0.5)
        assert on_screen_angle(window, tool.angles()[1]) == pytest.approx(45.0, abs=0.5)
        vertex = tool.angles()[0].points()[1]
        assert (vertex.x(), vertex.y()) == pytest.approx((100, 100), abs=0.6)   # still on the image point
    window.canvas.flush_render()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    save_screenshot(OUTPUT_DIR / "angle_tool.png", qimage_to_rgb(window.canvas.viewport().grab()))


def test_a_dragged_first_arm_then_a_click(opened):
    window, tool = opened, opened.angle_tool
    tool.set_enabled(True)
    canvas = window.canvas
    drag(canvas.viewport(), Qt.MouseButton.LeftButton,
         canvas.image_to_viewport(QPointF(40, 150)), canvas.image_to_viewport(QPointF(100, 150)))
    assert tool.active() is not None and len(tool.active().points()) == 2     # arm end + vertex
    click(window, 100 + 50, 150 - 50 * 3 ** 0.5)      # 120° from the first arm
    assert [m.text for m in tool.measurements()] == ["120.0°"]


def test_the_ruler_and_the_angle_take_turns_and_delete_clears_angles(opened):
    window, tool = opened, opened.angle_tool
    tool.set_enabled(True)
    for x, y in [(150, 100), (100, 100), (100, 40)]:
        click(window, x, y)
    window.action("ruler").trigger()                 # M
    assert window.canvas.is_ruler_enabled() and not tool.is_enabled()
    tool.action.trigger()
    assert tool.is_enabled() and not window.canvas.is_ruler_enabled() and not window.action("ruler").isChecked()
    click(window, 20, 20)                            # an unfinished angle goes too
    window.action("clear_measurements").trigger()    # Delete
    assert tool.angles() == [] and tool.active() is None
    assert not [item for item in window.canvas.scene().items() if type(item).__name__ == "AngleItem"]


def test_a_new_image_clears_the_angles(qtbot, opened, tmp_path):
    window, tool = opened, opened.angle_tool
    tool.set_enabled(True)
    for x, y in [(150, 100), (100, 100), (100, 40)]:
        click(window, x, y)
    other = tmp_path / "other.png"
    write_png(other, np.full((120, 120), 30, np.uint8))
    open_and_wait(qtbot, window, [other])
    assert tool.angles() == []


def test_the_angle_is_in_the_tools_menu_below_the_ruler_and_on_the_shortcut_sheet(opened):
    actions = [a for a in opened.menu("tools").actions() if not a.isSeparator()]
    ruler = actions.index(opened.action("ruler"))
    assert actions[ruler + 1] is opened.angle_tool.action
    assert ("Angle", "A") in {(row.command, row.keys) for row in shortcut_rows(opened)}


def test_anisotropic_spacing_gives_the_angle_in_the_patient():
    # 45° in pixels; rows twice as tall as columns are wide, so steeper in the patient
    assert measure_angle((10, 0), (0, 0), (10, 10), (0.2, 0.1)).degrees == pytest.approx(63.43, abs=0.01)
    assert measure_angle((10, 0), (0, 0), (10, 10)).text == "45.0°"
    assert measure_angle((0, 0), (0, 0), (10, 10)).degrees == 0.0
