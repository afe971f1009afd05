"""The compare side's own AI result (#16): its own call (core.model_call wording), its own heat map with the
window's overlay settings, requests in the worker's "compare" lane (the main image's result is never
superseded), the out-of-distribution gate as on the main view, and Read First: nothing on the compare side
before the main image is read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.model_call import call_for
from cxrviewer.ui.features.compare_ai import READ_FIRST_TEXT
from cxrviewer.ui.shell.settings import ViewerSettings
from tests.model_factory import EXPORT_SAFE_BACKBONE, make_model_folder

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot

MODEL_TIMEOUT_MS = 180_000
RESULT_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare_models")
    make_model_folder(root, "tiny", operating_threshold=0.05, backbone=EXPORT_SAFE_BACKBONE)
    return root


def chest(shift: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:240, 0:200].astype(np.float32)
    body = 2600.0 - 600.0 * ((xx - 100) / 100) ** 2
    for cx in (60, 140):
        body[((xx - cx) / 32) ** 2 + ((yy - 108) / 72) ** 2 < 1.0] -= 1500.0
    body += np.random.default_rng(shift).normal(0, 40, body.shape)
    return np.roll(np.clip(body, 0, 4095).astype(np.uint16), shift, axis=1)


@pytest.fixture
def open_window(qtbot, monkeypatch, make_window, settings_file, models_root):
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models_root))

    def make(read_first: bool):
        settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
        settings.qsettings.setValue("ai/read_first", read_first)
        settings.qsettings.setValue("ai/model", "tiny")
        window = make_window(settings, size=(1500, 900))
        qtbot.waitUntil(lambda: window.ai.current_model() is not None or bool(window.ai.last_error()),
                        timeout=MODEL_TIMEOUT_MS)
        assert window.ai.current_model() is not None, window.ai.last_error()
        return window

    return make


def main_result(window) -> bool:
    image, cam = window.current_image(), window.ai.shown_cam()
    return image is not None and cam is not None and cam.image_key == image_key(image) \
        and window.ai.current_prediction() is not None


def compare_result(window) -> bool:
    side = window.compare.ai.session
    image = window.compare.image()
    cam = side.shown_cam()
    return image is not None and cam is not None and cam.image_key == image_key(image) \
        and side.current_prediction() is not None


def compare_and_wait(qtbot, window, path: Path) -> None:
    window.compare.compare_with(path)
    qtbot.waitUntil(lambda: window.compare.image() is not None and window.compare.image().path == path, timeout=30_000)
    qtbot.waitUntil(lambda: compare_result(window), timeout=RESULT_TIMEOUT_MS)


def test_each_side_has_its_own_call_and_map(qtbot, open_window, make_dicom):
    window = open_window(read_first=False)
    main_path = make_dicom(chest(0), name="current.dcm")
    prior_path = make_dicom(chest(40)[:, ::-1].copy(), name="prior.dcm")
    open_and_wait(qtbot, window, [main_path])
    window.compare.compare_with(prior_path)       # asked at once: the main request must not be superseded
    qtbot.waitUntil(lambda: main_result(window), timeout=RESULT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.compare.image() is not None and compare_result(window), timeout=RESULT_TIMEOUT_MS)
    ai, side = window.ai, window.compare.ai
    main_image, prior_image = window.current_image(), window.compare.image()
    assert ai.current_prediction().image_key == image_key(main_image)
    assert side.session.current_prediction().image_key == image_key(prior_image)
    assert ai.overlay.image_key() == image_key(main_image) and side.overlay.image_key() == image_key(prior_image)
    assert ai.overlay.isVisible() and side.overlay.isVisible()
    call = call_for(side.session.current_prediction(), window.ai.current_model().card)
    assert side.text() == f"Model's call: {call.headline}"
    assert side.legend.isVisible() and side.legend.text.text().startswith("Heat map: ")
    # the same overlay settings: opacity and colour map follow the main controls
    window.ai.overlay_settings.set_opacity(0.3)
    assert side.overlay.opacity() == pytest.approx(0.3) and ai.overlay.opacity() == pytest.approx(0.3)
    window.ai.overlay_settings.set_visible(False)
    assert not side.overlay.isVisible() and not ai.overlay.isVisible()
    window.ai.overlay_settings.set_visible(True)
    window.ai.overlay_settings.set_opacity(0.5)
    assert side.overlay.isVisible()
    qtbot.wait(50)
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    save_screenshot(OUTPUT_DIR / "compare_ai_both_sides.png", qimage_to_rgb(window.grab()))
    # closing compare cancels its lane and clears its result line
    window.compare.set_open(False)
    assert side.session.image is None and side.text() == ""
    assert ai.current_prediction().image_key == image_key(main_image)


def test_read_first_hides_the_compare_side_until_the_main_image_is_read(qtbot, open_window, make_dicom):
    window = open_window(read_first=True)
    open_and_wait(qtbot, window, [make_dicom(chest(0), name="current.dcm")])
    qtbot.waitUntil(lambda: main_result(window), timeout=RESULT_TIMEOUT_MS)
    compare_and_wait(qtbot, window, make_dicom(chest(30), name="prior.dcm"))
    side = window.compare.ai
    assert window.ai.results_hidden() and side.session.results_hidden()
    assert side.session.current_prediction() is not None              # it arrived, it is not shown
    assert side.text() == READ_FIRST_TEXT
    assert side.overlay.has_overlay() and not side.overlay.isVisible() and side.legend.isHidden()
    window.ai.set_results_hidden(False)                        # what the reveal does
    assert not side.session.results_hidden() and side.overlay.isVisible()
    assert side.text().startswith("Model's call: ")


def lateral_on_the_compare_side(qtbot, open_window, make_dicom):
    """A window with a frontal film answered on the main side and a lateral one (flagged) on the compare side."""
    window = open_window(read_first=False)
    open_and_wait(qtbot, window, [make_dicom(chest(0), name="current.dcm")])
    qtbot.waitUntil(lambda: main_result(window), timeout=RESULT_TIMEOUT_MS)
    compare_and_wait(qtbot, window, make_dicom(chest(20), name="lateral.dcm", ViewPosition="LAT"))
    return window


def test_a_lateral_film_on_the_compare_side_gets_no_call_and_no_map(qtbot, open_window, make_dicom):
    window = lateral_on_the_compare_side(qtbot, open_window, make_dicom)
    side = window.compare.ai
    prediction = side.session.current_prediction()
    assert prediction.outside_training_data and side.session.outside_held()
    assert side.text().startswith("No call and no heat map: ") and prediction.ood.message("tiny") in side.text()
    assert not side.overlay.isVisible()
    assert window.ai.overlay.isVisible() and not window.ai.ood_hidden()      # the main side is unaffected


def test_show_anyway_on_the_compare_side_lets_a_flagged_film_through_marked(qtbot, open_window, make_dicom):
    """The compare pane offers "Show anyway" as the main panel does; it acts on the compare AiSession only and
    the result is marked as the main view marks it (gate line "Shown anyway — …", legend "(outside training data)")."""
    window = lateral_on_the_compare_side(qtbot, open_window, make_dicom)
    side = window.compare.ai
    prediction = side.session.current_prediction()
    assert side.session.outside_held() and side.show_anyway_button.isVisible()
    assert not window.ai.panel.show_anyway_button.isVisible()                 # the main side holds nothing back
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "compare_ai_flagged.png", qimage_to_rgb(window.grab()))

    side.show_anyway_button.click()
    assert not side.session.outside_held() and not side.show_anyway_button.isVisible()
    call = call_for(prediction, window.ai.current_model().card)
    lines = side.text().splitlines()
    assert lines[0] == f"Model's call: {call.headline}"
    assert lines[1] == f"Shown anyway — {prediction.ood.message('tiny')}."
    assert side.overlay.isVisible() and side.legend.isVisible()
    assert side.legend.text.text().endswith("(outside training data)")
    assert not window.ai.ood_hidden() and window.ai.overlay.isVisible()   # the main side is as it was
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "compare_ai_shown_anyway.png", qimage_to_rgb(window.grab()))


def _legend_clear_of_corner_text(canvas, legend) -> list[str]:
    """The bottom corners whose text the legend covers (viewport coordinates)."""
    from PySide6.QtCore import QRectF

    box = QRectF(legend.geometry().translated(-canvas.viewport().geometry().topLeft()))
    return [corner for corner, rect in canvas.corner_text_bounds().items() if rect.intersects(box)]


def test_on_a_narrow_pane_the_legend_sits_above_the_corner_text(qtbot, open_window, make_dicom):
    """Compare 1×2 in a small window: each side's heat-map legend is clear of its corner text (no rectangles
    intersect), on the main and the compare side, also after the window/level changes the corner text."""
    window = open_window(read_first=False)
    window.resize(1100, 720)
    open_and_wait(qtbot, window, [make_dicom(chest(0), name="current.dcm")])
    qtbot.waitUntil(lambda: main_result(window), timeout=RESULT_TIMEOUT_MS)
    compare_and_wait(qtbot, window, make_dicom(chest(30), name="prior.dcm"))
    qtbot.wait(50)
    sides = ((window.canvas, window.ai.legend), (window.compare.canvas, window.compare.ai.legend))
    for canvas, legend in sides:
        bounds = canvas.corner_text_bounds()
        assert {"bottom_left", "bottom_right"} <= set(bounds) and legend.isVisible()
        assert canvas.viewport().width() < legend.width() + bounds["bottom_left"].width() \
            + bounds["bottom_right"].width() + 40        # narrow: side by side at the bottom they would overlap
        assert _legend_clear_of_corner_text(canvas, legend) == []
        if canvas.viewport().width() >= legend.MIN_WIDTH + 2 * legend.MARGIN:     # and within the image area
            assert canvas.viewport().geometry().contains(legend.geometry())
        assert legend.geometry().bottom() < canvas.viewport().geometry().bottom() - bounds["bottom_left"].height()
        assert legend.text.height() >= legend.text.heightForWidth(legend.text.width())   # wrapped, not clipped
    window.canvas.rotate_clockwise()                     # one more corner line ("Rot 90°") on both (linked) sides
    window.canvas.set_inverted(True)
    for canvas, legend in sides:
        assert _legend_clear_of_corner_text(canvas, legend) == []
    qtbot.wait(50)
    save_screenshot(OUTPUT_DIR / "compare_narrow_legend.png", qimage_to_rgb(window.grab()))
    window.compare.set_open(False)                       # a wide image area: the legend is at the bottom again
    window.resize(1900, 1000)
    qtbot.waitUntil(lambda: window.canvas.viewport().width() > 900, timeout=5_000)
    legend, viewport = window.ai.legend, window.canvas.viewport().geometry()
    assert _legend_clear_of_corner_text(window.canvas, legend) == []
    assert viewport.bottom() - legend.geometry().bottom() <= legend.MARGIN + 1      # where it always was
