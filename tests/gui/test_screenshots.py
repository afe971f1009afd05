"""Screenshot tests: golden renders of the canvas, and a look at the whole window.

Goldens live in tests/gui/goldens/; re-approve with CXRVIEWER_APPROVE_GOLDENS=1. The bundled
DejaVu Sans is used for all text so the renders match across machines.
"""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from cxrviewer.core.types import SpacingKind, Window
from cxrviewer.ui.viewer.canvas import ImageCanvas
from tests.shared_data import shared_dir

from .helpers import drag, hover, make_xray, open_and_wait
from .image_compare import (
    OUTPUT_DIR,
    assert_matches_golden,
    compare_images,
    qimage_to_rgb,
    read_png,
    write_png,
)
from .synthetic import gradient

CANVAS_SIZE = (512, 512)
WINDOW_SIZE = (1400, 900)
GOLDEN_METADATA = {
    "PatientName": "Test, Golden",
    "PatientID": "G-1",
    "PatientSex": "O",
    "StudyDate": "2024-01-02",
    "StudyDescription": "Synthetic chest",
    "Modality": "CR",
    "ViewPosition": "PA",
}


@pytest.fixture
def golden_canvas(qtbot) -> ImageCanvas:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.setFixedSize(*CANVAS_SIZE)
    canvas.show()
    qtbot.waitExposed(canvas)
    image = make_xray(
        gradient(320, 400),
        window=Window(2000, 4000),
        metadata=GOLDEN_METADATA,
        pixel_spacing=(0.5, 0.5),
        spacing_kind=SpacingKind.PATIENT,
    )
    canvas.set_image(image)
    canvas.flush_render()
    return canvas


def render(canvas: ImageCanvas) -> np.ndarray:
    canvas.flush_render()
    return qimage_to_rgb(canvas.grab())


def test_golden_canvas_default(golden_canvas: ImageCanvas) -> None:
    assert_matches_golden("canvas_default", render(golden_canvas))


def test_golden_canvas_rotated_inverted_with_ruler(golden_canvas: ImageCanvas) -> None:
    canvas = golden_canvas
    canvas.rotate_clockwise()
    canvas.set_inverted(True)
    canvas.set_window(Window(1500, 2000))
    canvas.set_ruler_enabled(True)
    drag(canvas.viewport(), Qt.MouseButton.LeftButton,
         canvas.image_to_viewport(QPointF(40, 40)), canvas.image_to_viewport(QPointF(240, 40)))
    assert canvas.measurements()[0].text == "100.0 mm"
    assert_matches_golden("canvas_rotated_inverted_ruler", render(canvas))


def test_golden_corner_text_anonymised(golden_canvas: ImageCanvas) -> None:
    """The top-left corner alone, so that the hidden identifiers are a big part of the image."""
    top_left = np.s_[0:64, 0:200]
    named = render(golden_canvas)[top_left]
    golden_canvas.set_anonymise(True)
    anonymised = render(golden_canvas)[top_left]
    assert_matches_golden("corner_top_left_anonymised", anonymised)
    assert not compare_images(named, anonymised).ok     # the crop does tell the two apart


def test_screenshot_main_window_with_real_dicom(qtbot, make_window) -> None:
    """Not a golden (the real file's render depends on the JPEG decoder): a picture to look at."""
    folder = shared_dir()
    if folder is None or not (folder / "dicom" / "cr_chest_mono2_jpeg_baseline.dcm").is_file():
        pytest.skip("../shared/dicom/cr_chest_mono2_jpeg_baseline.dcm not present: no main-window screenshot")
    window = make_window(size=WINDOW_SIZE)
    window.setFixedSize(*WINDOW_SIZE)
    image = open_and_wait(qtbot, window, [folder / "dicom" / "cr_chest_mono2_jpeg_baseline.dcm"])
    assert image is not None
    canvas = window.canvas
    hover(canvas.viewport(), canvas.image_to_viewport(QPointF(300.5, 400.5)))
    assert window.pixel_label.text().startswith("x 300  y 400  value ")
    qtbot.wait(50)
    assert window.tag_dock.isVisible()
    assert window.canvas.corner_text().all_lines()
    shot = qimage_to_rgb(window.grab())
    path = write_png(OUTPUT_DIR / "main_window_dicom.png", shot)
    assert shot.shape == (WINDOW_SIZE[1], WINDOW_SIZE[0], 3)
    assert path.stat().st_size > 10_000
    # Polarity: MONOCHROME2 chest — the lungs (dark) are darker than the spine/mediastinum.
    canvas_shot = qimage_to_rgb(window.canvas.grab())
    h, w = canvas_shot.shape[:2]
    lung = canvas_shot[h * 2 // 5, w * 3 // 10].mean()
    mediastinum = canvas_shot[h * 2 // 5, w // 2].mean()
    assert lung < mediastinum


def test_render_window_screenshot_helper(qapp, tmp_path) -> None:
    from cxrviewer.ui.shell.app import render_window_screenshot

    from .synthetic import write_png as write_image

    image = write_image(tmp_path / "img.png", gradient(100, 120).astype(np.uint16))
    out = render_window_screenshot([image], tmp_path / "shot.png", size=(900, 600))
    shot = read_png(out)
    assert shot.shape == (600, 900, 3)


@pytest.mark.parametrize("anonymise", [False, True], ids=["named", "anonymised"])
def test_window_screenshot_waits_for_the_tags_and_can_anonymise(qapp, tmp_path, monkeypatch, anonymise) -> None:
    """What the picture shows, read from the window at the moment it is grabbed."""
    from cxrviewer.ui.docks.tag_dock import HIDDEN_VALUE
    from cxrviewer.ui.shell.app import render_window_screenshot
    from cxrviewer.ui.shell.main_window import MainWindow

    from .synthetic import PATIENT_ID, write_dicom

    dicom = write_dicom(tmp_path / "named.dcm", gradient(200, 160), patient_name="Grabbed^Gina")
    seen: dict[str, object] = {}
    real_grab = MainWindow.grab

    def spy(window: MainWindow, *args):
        model = window.tag_dock.tags.model
        values = {model.index(row, 1).data(): model.index(row, 3).data() for row in range(model.rowCount())}
        seen.update(corner="\n".join(window.canvas.corner_text().all_lines()),
                    tree=window.study_dock.tree.topLevelItem(0).text(0), tags=values)
        return real_grab(window, *args)

    monkeypatch.setattr(MainWindow, "grab", spy)
    out = render_window_screenshot([dicom], tmp_path / "shot.png", size=(1000, 700), anonymise=anonymise)
    assert read_png(out).shape == (700, 1000, 3)
    tags = seen["tags"]
    assert tags["Rows"] == "200" and tags["Columns"] == "160"      # the listing was complete
    if anonymise:
        assert tags["Patient's Name"] == HIDDEN_VALUE and tags["Patient ID"] == HIDDEN_VALUE
        for text in (seen["corner"], seen["tree"]):
            assert "Grabbed" not in text and "Gina" not in text and PATIENT_ID not in text
    else:
        assert "Grabbed" in tags["Patient's Name"] and "Grabbed" in seen["corner"]
