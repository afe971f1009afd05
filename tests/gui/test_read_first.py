"""Read-first mode: the panel, picking a point on the canvas, the session that hides and reveals the AI."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QHBoxLayout, QWidget

from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import CamResult, OodVerdict, Prediction, Window
from cxrviewer.core.xai.overlay import cam_index_image, colorize, colormap_lut
from cxrviewer.teaching.reads import ReadCall, ReadStore, compare_read
from cxrviewer.ui.docks.read_first_panel import (
    ReadFirstPanel,
    make_read_first_action,
    make_read_first_dock,
    read_first_enabled,
)
from cxrviewer.ui.features.read_first_session import ReadFirstSession
from cxrviewer.ui.viewer.canvas import ImageCanvas
from cxrviewer.ui.viewer.point_picker import PointPicker

from .helpers import drag, make_xray, send_mouse
from .image_compare import OUTPUT_DIR, assert_matches_golden, qimage_to_rgb, write_png

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
PANEL_SIZE = (320, 680)   # the reveal text is longer since it states the call rule and the hot-region rule


def chest_pixels(size: int = 256) -> np.ndarray:
    """A smooth frontal-chest-like phantom (dark lungs in a bright body), in 0–4000 units."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.full((size, size), 300.0)
    image[((xx - 0.5) / 0.45) ** 2 + ((yy - 0.55) / 0.62) ** 2 < 1] = 3000
    for cx in (0.32, 0.68):
        lung = ((xx - cx) / 0.13) ** 2 + ((yy - 0.45) / 0.27) ** 2 < 1
        image[lung] = 1200
    return image + np.random.default_rng(0).normal(0, 60, (size, size))


def chest_image(name: str = "NORMAL/case1.png"):
    image = make_xray(chest_pixels(), window=Window(2000, 4000), name=name)
    return dataclasses.replace(image, path=Path("/teaching/pneumonia") / name,
                               sha256=hashlib.sha256(name.encode()).hexdigest())


@pytest.fixture
def panel(qtbot) -> ReadFirstPanel:
    widget = ReadFirstPanel()
    qtbot.addWidget(widget)
    widget.setFixedSize(*PANEL_SIZE)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.setFixedSize(400, 400)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(chest_image())
    view.flush_render()
    return view


def click(widget, pos: QPointF) -> None:
    send_mouse(widget, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


# ------------------------------------------------------------------------ the panel

def test_reveal_needs_a_call_and_emits_it(qtbot, panel: ReadFirstPanel) -> None:
    assert panel.state() == "calling"
    assert not panel.reveal_button.isEnabled()
    panel.call_buttons["bacterial"].click()
    assert not panel.reveal_button.isEnabled()          # the confidence must be set, not left at 50 %
    assert panel.confidence_value.text() == "not set"
    panel.confidence_slider.setValue(65)                # a value set by the program is not the trainee's
    assert not panel.reveal_button.isEnabled() and panel.current_call() is None
    panel.confidence_slider.setFocus()
    qtbot.keyClick(panel.confidence_slider, Qt.Key.Key_Right)     # the trainee moves it: +5
    assert panel.confidence_set() and panel.reveal_button.isEnabled()
    assert panel.confidence_value.text() == "70 %"
    panel.set_marked_point(12.4, 80.6)
    assert "x 12, y 81" in panel.point_label.text()
    calls: list[ReadCall] = []
    panel.call_recorded.connect(calls.append)
    with qtbot.waitSignal(panel.reveal_requested, timeout=1000):
        qtbot.mouseClick(panel.reveal_button, Qt.MouseButton.LeftButton)
    assert len(calls) == 1
    call = calls[0]
    assert call == ReadCall("bacterial", 70, (12.4, 80.6))
    assert panel.state() == "waiting" and panel.recorded_call() == call
    assert not any(b.isEnabled() for b in panel.call_buttons.values())      # the call is locked in
    assert not panel.reveal_button.isEnabled() and not panel.confidence_slider.isEnabled()


def test_recording_by_keyboard_keeps_the_focus_on_the_panel(qtbot) -> None:
    """F2, a letter, a digit, Enter: the call buttons lock, and Qt used to pass the focus on to the next
    button in the window (in the app the banner's "Model card…", which Space then pressed)."""
    from PySide6.QtWidgets import QApplication, QPushButton

    host = QWidget()
    qtbot.addWidget(host)
    layout = QHBoxLayout(host)
    panel = ReadFirstPanel(host)
    after = QPushButton("Model card…", host)
    layout.addWidget(panel)
    layout.addWidget(after)
    host.show()
    host.activateWindow()
    qtbot.waitActive(host)
    panel.focus_call()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.call_buttons["normal"], timeout=2000)
    for key in (Qt.Key.Key_V, Qt.Key.Key_8, Qt.Key.Key_Return):
        qtbot.keyClick(QApplication.focusWidget(), key)
    assert panel.state() == "waiting" and panel.recorded_call() is not None
    assert QApplication.focusWidget() is panel


def test_call_buttons_are_exclusive_and_reset_clears(panel: ReadFirstPanel) -> None:
    panel.call_buttons["normal"].click()
    panel.call_buttons["viral"].click()
    assert panel.selected_call() == "viral"
    panel.set_marked_point(1, 2)
    panel.reset()
    assert panel.selected_call() is None and panel.marked_point() is None
    assert panel.confidence_slider.value() == 50 and not panel.result_frame.isVisible()
    assert not panel.confidence_set() and panel.confidence_value.text() == "not set"


def test_mark_button_requests_a_point(qtbot, panel: ReadFirstPanel) -> None:
    with qtbot.waitSignal(panel.point_requested, timeout=1000) as blocker:
        panel.mark_button.click()
    assert blocker.args == [True]
    with qtbot.waitSignal(panel.point_requested, timeout=1000) as blocker:
        panel.set_marked_point(5, 6)
    assert blocker.args == [False] and not panel.mark_button.isChecked()


def test_comparison_texts(panel: ReadFirstPanel) -> None:
    cam = np.zeros((4, 4), np.float32)
    cam[1, 1] = 1.0
    comparison = compare_read(ReadCall("viral", 65, (80.0, 80.0)), "tiny", LABELS, (0.1, 0.2, 0.7), cam,
                              (256, 256), 0.5, known_label="BACTERIAL")
    panel.set_call("viral", 65)
    panel.reveal_button.click()
    panel.show_comparison(comparison)
    assert panel.is_revealed() and panel.result_frame.isVisible()
    text = panel.comparison_label.text()
    assert "You: <b>Viral</b> (confidence 65 %)" in text and "calls <b>VIRAL</b>" in text
    assert "you agree with the model" in text
    assert "inside the hot region" in panel.point_result_label.text()
    assert "BACTERIAL" in panel.known_label_label.text() and "does not match" in panel.known_label_label.text()
    assert panel.probability_bars.texts() == ["NORMAL 10.0 %", "BACTERIAL 20.0 %", "VIRAL 70.0 %"]


def test_golden_panel_before_and_after_the_reveal(panel: ReadFirstPanel) -> None:
    panel.set_call("bacterial", 80)
    panel.set_marked_point(60, 120)
    assert_matches_golden("read_first_calling", qimage_to_rgb(panel.grab()))
    cam = np.zeros((4, 4), np.float32)
    cam[2, 0] = 1.0
    panel.reveal_button.click()
    panel.show_comparison(compare_read(panel.recorded_call(), "pneumonia3", LABELS, (0.15, 0.25, 0.6), cam,
                                       (256, 256), None, known_label="BACTERIAL", operating_threshold=0.9))
    assert "calls <b>NORMAL</b> (pneumonia probability 0.85 is below the operating threshold 0.90)" in panel.comparison_label.text()
    assert "smallest part of the image holding 50 % of the map&#x27;s heat" in panel.point_result_label.text()
    assert_matches_golden("read_first_revealed", qimage_to_rgb(panel.grab()))


# ------------------------------------------------------------------------ picking a point on the canvas

def test_point_picker_click_marks_the_image_point_without_panning(qtbot, canvas: ImageCanvas) -> None:
    picker = PointPicker(canvas)
    canvas.rotate_clockwise()                       # picking works in image pixels whatever the orientation
    canvas.set_zoom(2.0)
    target = QPointF(100.5, 60.5)
    where = canvas.image_to_viewport(target)
    scroll = (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value())
    with qtbot.assertNotEmitted(picker.point_picked):
        click(canvas.viewport(), where)             # inactive: a click is just a (zero-length) pan
    picker.set_active(True)
    with qtbot.waitSignal(picker.point_picked, timeout=1000) as blocker:
        click(canvas.viewport(), where)
    x, y = blocker.args
    assert x == pytest.approx(100.5, abs=0.6) and y == pytest.approx(60.5, abs=0.6)
    assert (canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value()) == scroll
    assert picker.marker.isVisible() and picker.marker.pos() == QPointF(x, y)
    assert picker.marker.parentItem() is canvas.image_root()


def test_point_picker_ignores_drags_and_clicks_off_the_image(qtbot, canvas: ImageCanvas) -> None:
    picker = PointPicker(canvas)
    picker.set_active(True)
    with qtbot.assertNotEmitted(picker.point_picked):
        drag(canvas.viewport(), Qt.MouseButton.LeftButton, QPointF(150, 150), QPointF(200, 190))
    canvas.fit_to_window()
    canvas.set_zoom(0.5)
    with qtbot.assertNotEmitted(picker.point_picked):
        click(canvas.viewport(), QPointF(2, 2))      # outside the (small, centred) image


# ------------------------------------------------------------------------ the session

@pytest.fixture
def session(qtbot, panel: ReadFirstPanel, canvas: ImageCanvas, tmp_path: Path) -> ReadFirstSession:
    store = ReadStore(tmp_path / "reads.sqlite3")
    picker = PointPicker(canvas)
    s = ReadFirstSession(panel, store, picker)
    s.set_image(canvas.image())
    yield s
    store.close()


def results_for(image, top: int = 2, hot: tuple[int, int] = (1, 1)):
    key = image_key(image)
    probabilities = [0.1, 0.1, 0.1]
    probabilities[top] = 0.8
    prediction = Prediction(1, key, "tiny", LABELS, tuple(probabilities))
    cam = np.zeros((4, 4), np.float32)
    cam[hot] = 2.0
    cam.setflags(write=False)
    return prediction, CamResult(1, key, "tiny", top, "gradcam", "relu", cam)


def test_the_reveal_of_a_flagged_image_says_the_models_answer_is_a_guess(qtbot, session, panel, canvas) -> None:
    """The AI panel holds a flagged image's call back ("no call: a guess"); the reveal beside the
    trainee's call must not show the same numbers unqualified (seen in the H4 walk on an adult DICOM)."""
    prediction, _cam = results_for(canvas.image())
    reason = "looks unlike its training images (score 1.3, threshold 1.0)"
    session.set_prediction(dataclasses.replace(prediction, ood=OodVerdict(True, 1.3, 1.0, reason)))
    panel.set_call("normal", 60)
    with qtbot.waitSignal(session.read_saved, timeout=1000):
        panel.reveal_button.click()
    text = panel.comparison_label.text()
    assert f"Outside what tiny knows: {reason} — its answer here is a guess." in text
    assert text.index("you and the model differ") < text.index("Outside what tiny knows")


def test_the_reveal_of_an_unflagged_image_has_no_caveat(qtbot, session, panel, canvas) -> None:
    prediction, _cam = results_for(canvas.image())
    session.set_prediction(dataclasses.replace(prediction, ood=OodVerdict(False, 0.4, 1.0, "")))
    panel.set_call("viral", 60)
    with qtbot.waitSignal(session.read_saved, timeout=1000):
        panel.reveal_button.click()
    assert "Outside what" not in panel.comparison_label.text() and "guess" not in panel.comparison_label.text()


def test_session_hides_the_ai_until_the_call_then_saves_the_read(qtbot, session, panel, canvas) -> None:
    image = canvas.image()
    prediction, cam = results_for(image)
    assert not session.ai_visible() and session.export_state() == "before reveal"
    session.set_prediction(prediction)              # results arriving early are kept, not shown
    assert session.current_prediction() is prediction
    session.set_cam(cam)
    assert not panel.result_frame.isVisible()
    panel.set_call("viral", 85)
    panel.mark_button.click()
    assert session.picker.is_active()
    with qtbot.waitSignal(session.picker.point_picked, timeout=1000):
        click(canvas.viewport(), canvas.image_to_viewport(QPointF(80, 80)))   # in cam cell (1, 1) of 4×4 on 256 px
    assert not session.picker.is_active() and panel.marked_point() is not None
    shown: list[bool] = []
    session.ai_visibility_changed.connect(shown.append)
    with qtbot.waitSignal(session.read_saved, timeout=1000) as blocker:
        panel.reveal_button.click()
    assert shown == [True] and session.ai_visible() and session.export_state() == "revealed"
    record = blocker.args[0]
    assert record.call == "viral" and record.confidence == 85 and record.agrees_with_model
    assert record.point_in_hot_region is True and record.known_label == "NORMAL"   # from the NORMAL folder
    assert record.image_sha256 == image.sha256
    assert panel.is_revealed() and "inside the hot region" in panel.point_result_label.text()
    assert [r.id for r in session.store().records()] == [record.id]
    session.set_hot_threshold(0.9)                  # later changes do not save the read again
    assert len(session.store().records()) == 1


def test_session_waits_for_the_map_when_a_point_was_marked(qtbot, session, panel, canvas) -> None:
    prediction, cam = results_for(canvas.image(), hot=(3, 3))
    panel.set_call("normal", 40)
    panel.set_marked_point(10, 10)
    panel.reveal_button.click()
    with qtbot.assertNotEmitted(session.read_saved):
        session.set_prediction(prediction)
    assert panel.is_revealed() and "not available yet" in panel.point_result_label.text()
    with qtbot.waitSignal(session.read_saved, timeout=1000) as blocker:
        session.set_cam(cam)
    assert blocker.args[0].point_in_hot_region is False and blocker.args[0].agrees_with_model is False


def test_session_drops_results_for_another_image(qtbot, session, panel, canvas) -> None:
    other = chest_image("VIRAL/other.png")
    prediction, cam = results_for(other)
    panel.set_call("normal", 40)
    panel.reveal_button.click()
    with qtbot.assertNotEmitted(session.read_saved):
        session.set_prediction(prediction)
        session.set_cam(cam)
    assert not panel.is_revealed()


def test_next_image_hides_the_ai_again(qtbot, session, panel, canvas) -> None:
    prediction, _ = results_for(canvas.image())
    panel.set_call("viral", 60)
    panel.reveal_button.click()
    session.set_prediction(prediction)
    assert session.ai_visible()
    with qtbot.waitSignal(session.ai_visibility_changed, timeout=1000) as blocker:
        session.set_image(chest_image("VIRAL/next.png"))
    assert blocker.args == [False]
    assert panel.state() == "calling" and not session.picker.marker.isVisible()


def test_read_first_off_shows_the_ai_and_records_nothing(qtbot, session, panel, canvas) -> None:
    with qtbot.waitSignal(session.ai_visibility_changed, timeout=1000) as blocker:
        session.set_enabled(False)
    assert blocker.args == [True] and not panel.isEnabled() and session.export_state() is None
    prediction, cam = results_for(canvas.image())
    with qtbot.assertNotEmitted(session.read_saved):
        session.set_prediction(prediction)
        session.set_cam(cam)
    session.set_image(chest_image("VIRAL/next.png"))
    assert session.ai_visible()


def test_a_broken_store_is_reported_not_raised(qtbot, panel, canvas, tmp_path: Path) -> None:
    (tmp_path / "bad.sqlite3").write_bytes(b"not a database" * 50)
    s = ReadFirstSession(panel, lambda: ReadStore(tmp_path / "bad.sqlite3"))
    s.set_image(canvas.image())
    prediction, _ = results_for(canvas.image())
    panel.set_call("viral", 60)
    panel.reveal_button.click()
    with qtbot.waitSignal(s.problem, timeout=1000) as blocker:
        s.set_prediction(prediction)
    assert "could not be saved" in blocker.args[0] and "bad.sqlite3" in blocker.args[0]
    assert panel.is_revealed()                      # the trainee still sees the result


# ------------------------------------------------------------------------ setting and screenshot

def test_read_first_is_on_by_default_and_the_action_saves_it(qtbot, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert read_first_enabled(settings) is True
    holder = QWidget()
    qtbot.addWidget(holder)
    action = make_read_first_action(holder, settings)
    assert action.isChecked()
    action.setChecked(False)
    assert read_first_enabled(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)) is False


def test_screenshot_read_first_beside_the_image(qtbot, tmp_path: Path) -> None:
    """Not a golden: the whole flow in one picture to look at (tests/gui/_output/read_first_flow.png)."""
    host = QWidget()
    qtbot.addWidget(host)
    canvas = ImageCanvas(host)
    panel = ReadFirstPanel(host)
    dock = make_read_first_dock(panel)
    assert dock.objectName() == "readFirstDock" and dock.widget().widget() is panel
    panel.setParent(host)
    layout = QHBoxLayout(host)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(canvas, 1)
    layout.addWidget(panel)
    panel.setFixedWidth(320)
    host.setFixedSize(820, 560)
    host.show()
    qtbot.waitExposed(host)
    image = chest_image("PNEUMONIA/person3_virus_1.png")
    canvas.set_image(image)
    canvas.flush_render()
    store = ReadStore(tmp_path / "reads.sqlite3")
    session = ReadFirstSession(panel, store, PointPicker(canvas))
    session.set_image(image)
    overlay = QGraphicsPixmapItem()
    canvas.add_overlay_item(overlay, 10)
    session.ai_visibility_changed.connect(overlay.setVisible)
    overlay.setVisible(session.ai_visible())
    prediction, cam = results_for(image, top=2, hot=(1, 0))
    rgba = colorize(cam_index_image(cam.cam, image.shape), colormap_lut("jet"), 0.3)
    overlay.setPixmap(QPixmap.fromImage(QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.shape[1] * 4,
                                               QImage.Format.Format_RGBA8888).copy()))
    overlay.setOpacity(0.45)
    overlay.setTransform(QTransform())
    session.set_prediction(prediction)
    session.set_cam(cam)
    panel.set_call("viral", 75)
    panel.mark_button.click()
    click(canvas.viewport(), canvas.image_to_viewport(QPointF(30, 95)))    # inside the hot cell (row 1, col 0)
    session.set_hot_threshold(0.3)             # the overlay's threshold: "hot" = coloured on screen
    before = qimage_to_rgb(host.grab())
    write_png(OUTPUT_DIR / "read_first_before_reveal.png", before)
    assert not overlay.isVisible()
    panel.reveal_button.click()
    after = qimage_to_rgb(host.grab())
    write_png(OUTPUT_DIR / "read_first_flow.png", np.hstack([before, after]))
    assert overlay.isVisible() and panel.is_revealed()
    assert session.last_comparison is not None and session.last_comparison.point_in_hot_region is True
    assert session.last_comparison.known_label == "VIRAL"
    store.close()


def test_results_that_arrive_before_the_image_are_used(qtbot, panel, canvas, tmp_path: Path) -> None:
    """A cached prediction can be emitted before the session hears of the new image."""
    store = ReadStore(tmp_path / "r.sqlite3")
    s = ReadFirstSession(panel, store)
    image = chest_image("VIRAL/cached.png")
    prediction, _ = results_for(image)
    s.set_prediction(prediction)                    # first the result...
    s.set_image(image)                              # ...then the image change
    panel.set_call("viral", 90)
    with qtbot.waitSignal(s.read_saved, timeout=1000) as blocker:
        panel.reveal_button.click()
    assert blocker.args[0].agrees_with_model and blocker.args[0].known_label == "VIRAL"
    store.close()


def test_a_short_dock_scrolls_instead_of_squeezing_the_result(qtbot) -> None:
    panel = ReadFirstPanel()
    dock = make_read_first_dock(panel)
    qtbot.addWidget(dock)
    dock.resize(320, 260)
    dock.show()
    qtbot.waitExposed(dock)
    panel.set_call("viral", 60)
    panel.reveal_button.click()
    panel.show_comparison(compare_read(panel.recorded_call(), "tiny", LABELS, (0.1, 0.2, 0.7)))
    qtbot.wait(20)
    assert panel.height() >= panel.minimumSizeHint().height() > 260
    bars, point = panel.probability_bars, panel.point_result_label
    assert bars.geometry().bottom() < point.geometry().top()     # nothing drawn over the bars
    assert dock.widget().verticalScrollBar().maximum() > 0


# ------------------------------------------------------------------------ one call: the model's labels and rule

def test_covid3_choices_are_its_own_classes(session, panel) -> None:
    session.set_model("covid3", ("COVID-19", "NORMAL", "VIRAL"), 0.19)
    assert panel.choices() == ("covid-19", "normal", "viral", "other")
    assert panel.call_buttons["covid-19"].text() == "COVID-19  [C]" and "bacterial" not in panel.call_buttons
    session.set_model("pneumonia3", LABELS, 0.85)
    assert panel.choices() == ("normal", "bacterial", "viral", "other")


def test_borderline_read_is_scored_on_the_call_not_the_top_class(qtbot, session, panel, canvas) -> None:
    """pneumonia 0.835 < the card's 0.85: the model calls NORMAL although VIRAL is the top class."""
    image = canvas.image()
    session.set_model("tiny", LABELS, 0.85)
    session.set_prediction(Prediction(1, image_key(image), "tiny", LABELS, (0.165, 0.37, 0.465)))
    panel.set_call("viral", 70)
    with qtbot.waitSignal(session.read_saved, timeout=1000) as blocker:
        panel.reveal_button.click()
    record = blocker.args[0]
    assert record.model_top_label == "VIRAL" and record.model_call_label == "NORMAL"
    assert record.agrees_with_model is False and record.operating_threshold == 0.85
    text = panel.comparison_label.text()
    assert "calls <b>NORMAL</b>" in text and "you and the model differ" in text


def test_reading_an_image_again_updates_its_read(qtbot, session, panel, canvas) -> None:
    image = canvas.image()
    prediction, _cam = results_for(image)
    session.set_prediction(prediction)
    for call in ("normal", "viral"):
        session.set_image(image)                     # the same image shown again: a new read of it
        panel.set_call(call, 60)
        with qtbot.waitSignal(session.read_saved, timeout=1000):
            panel.reveal_button.click()
    current = session.store().records()
    assert [r.call for r in current] == ["viral"]
    assert [r.call for r in session.store().records_for_image(image.sha256)] == ["normal", "viral"]


def test_panel_is_not_clickable_without_an_image(qtbot) -> None:
    panel = ReadFirstPanel()
    qtbot.addWidget(panel)
    session = ReadFirstSession(panel, store=None)
    assert not panel.isEnabled()
    session.set_image(None)
    assert not panel.isEnabled()
