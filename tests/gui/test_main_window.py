"""MainWindow with real loading: studies, navigation, tags, anonymise, presets, problems."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__
from cxrviewer.core.types import SpacingKind, Window
from cxrviewer.ui.dialogs.about import AboutDialog
from cxrviewer.ui.docks.tag_dock import HIDDEN_VALUE
from cxrviewer.ui.shell.settings import MAX_RECENT_FILES, ViewerSettings
from cxrviewer.ui.viewer.corner_text import ANONYMISED_PLACEHOLDER
from tests.shared_data import requires_shared, shared_dir

from .helpers import drag, hover, open_and_wait, wait_for_image, wait_for_tags
from .synthetic import PATIENT_ID, PATIENT_NAME_SHOWN, gradient, write_dicom, write_png

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def three_pngs(tmp_path: Path) -> Path:
    folder = tmp_path / "pngs"
    write_png(folder / "a_1.png", np.full((40, 50), 10, np.uint8))
    write_png(folder / "a_2.png", np.full((40, 50), 20, np.uint8))
    write_png(folder / "nested" / "a_3.png", np.full((40, 50), 30, np.uint8))   # found recursively
    return folder


@pytest.fixture
def spaced_dicom(tmp_path: Path) -> Path:
    return write_dicom(tmp_path / "spaced.dcm", gradient(300, 300), pixel_spacing=(0.5, 0.5),
                       windows=[(2000, 4000), (1000, 500)])


# ------------------------------------------------------------------------------------ real data
@requires_shared
def test_open_real_chest_dicom(qtbot, window) -> None:
    path = shared_dir() / "dicom" / "cr_chest_mono2_jpeg_baseline.dcm"
    image = open_and_wait(qtbot, window, [path])
    assert image is not None and image.path == path
    assert window.current_image() is image
    assert window.canvas.image() is image
    assert any("CR" in line for line in window.canvas.corner_text().bottom_left)
    assert window.problems() == []
    assert "cr_chest_mono2_jpeg_baseline.dcm" in window.windowTitle()
    wait_for_tags(qtbot, window)
    assert window.tag_dock.tags.total_rows() > 10


@requires_shared
def test_big_jpeg2000_loads_without_blocking(qtbot, window) -> None:
    path = shared_dir() / "dicom" / "cr_chest_mono1_j2k_lossy.dcm"
    window.open_paths([path])
    # open_paths returns before decoding finishes: the GUI thread is free to paint.
    assert window.current_image() is None
    with qtbot.waitSignal(window.image_changed, timeout=120_000) as blocker:
        pass
    image = blocker.args[0]
    assert image is not None and image.invert_for_display   # MONOCHROME1


# ------------------------------------------------------------------------- window/level, presets
def test_right_drag_on_window_changes_window(qtbot, window, spaced_dicom: Path) -> None:
    open_and_wait(qtbot, window, [spaced_dicom])
    before = window.canvas.window()
    drag(window.canvas.viewport(), Qt.MouseButton.RightButton, QPointF(200, 200), QPointF(260, 180))
    after = window.canvas.window()
    assert after.width > before.width and after.center < before.center


def test_presets_menu_applies_dicom_auto_and_full_range(qtbot, window, spaced_dicom: Path) -> None:
    image = open_and_wait(qtbot, window, [spaced_dicom])
    actions = window.preset_actions()
    names = [a.text() for a in actions]
    assert any(n.startswith("Auto") for n in names)
    assert any(n.startswith("Full range") for n in names)
    second = next(a for a in actions if a.data() == (1000.0, 500.0))
    second.trigger()
    assert window.canvas.window() == Window(1000, 500)
    assert second.isChecked()
    full = next(a for a in actions if a.text().startswith("Full range"))
    full.trigger()
    assert window.canvas.window().low == pytest.approx(float(image.pixels.min()))
    assert window.canvas.window().high == pytest.approx(float(image.pixels.max()), abs=1)
    window.action("reset_window").trigger()
    assert window.canvas.window() == image.default_window


# -------------------------------------------------------------------------------- view actions
def test_view_actions_and_shortcuts(qtbot, window, spaced_dicom: Path) -> None:
    open_and_wait(qtbot, window, [spaced_dicom])
    window.activateWindow()
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_1)
    assert window.canvas.zoom() == pytest.approx(1.0)
    QTest.keyClick(window.canvas, Qt.Key.Key_Plus)
    assert window.canvas.zoom() == pytest.approx(1.25)
    QTest.keyClick(window.canvas, Qt.Key.Key_F)
    assert window.canvas.is_fit_mode()
    before = window.canvas.display_array().copy()
    QTest.keyClick(window.canvas, Qt.Key.Key_I)
    assert window.action("invert").isChecked()
    np.testing.assert_array_equal(window.canvas.display_array(), 255 - before)
    window.action("rotate_cw").trigger()
    window.action("flip_h").trigger()
    assert window.canvas.orientation() != (1, 0, 0, 1)
    QTest.keyClick(window.canvas, Qt.Key.Key_R)
    assert window.canvas.orientation() == (1, 0, 0, 1)
    assert not window.action("invert").isChecked()
    QTest.keyClick(window.canvas, Qt.Key.Key_M)
    assert window.canvas.is_ruler_enabled()


def test_every_viewing_action_is_in_a_menu_with_its_shortcut(window) -> None:
    in_menus = set()
    for name in ("file", "view", "image", "tools", "help"):
        in_menus.update(window.menu(name).actions())
    expected = {
        "open": "Ctrl+O", "open_folder": "Ctrl+Shift+O", "zoom_in": "+", "zoom_out": "-",
        "fit": "F", "actual_size": "1", "invert": "I", "reset": "R", "ruler": "M",
        "next_image": "PgDown", "previous_image": "PgUp", "rotate_cw": "Ctrl+R",
        "flip_h": "H", "flip_v": "V", "anonymise": "Ctrl+Shift+A",
    }
    for name, key in expected.items():
        action = window.action(name)
        assert action in in_menus, name
        assert action.shortcut().toString() == key, name
    toolbar = set(window.toolbar.actions())
    for name in ("open", "fit", "invert", "rotate_cw", "flip_h", "ruler", "next_image"):
        assert window.action(name) in toolbar


# ------------------------------------------------------------------------------ anonymise, tags
def test_anonymise_hides_identifiers_and_is_remembered(qtbot, make_window, viewer_settings, spaced_dicom) -> None:
    window = make_window()
    open_and_wait(qtbot, window, [spaced_dicom])
    shown = "\n".join(window.canvas.corner_text().all_lines())
    assert PATIENT_NAME_SHOWN in shown and PATIENT_ID in shown
    tree_text = window.study_dock.tree.topLevelItem(0).text(0)
    assert PATIENT_ID in tree_text
    assert window.study_dock.tree.image_item(0).toolTip(0) == str(spaced_dicom)

    window.action("anonymise").trigger()
    assert window.is_anonymised()
    hidden = "\n".join(window.canvas.corner_text().all_lines())
    for identifier in (PATIENT_NAME_SHOWN, "Doe", PATIENT_ID, "1970-01-02", "ACC-777", "Teaching Hospital"):
        assert identifier not in hidden
    assert ANONYMISED_PLACEHOLDER in hidden
    assert "Doe" not in window.study_dock.tree.topLevelItem(0).text(0)
    assert window.study_dock.tree.image_item(0).toolTip(0) == spaced_dicom.name   # no folders (names)
    wait_for_tags(qtbot, window)
    tags = window.tag_dock.tags
    tags.search.setText("patient's name")
    assert tags.row_count() == 1
    assert tags.model.index(0, 3).data() == HIDDEN_VALUE
    tags.search.setText("Doe")              # the filter sees what is shown, not the hidden name
    assert tags.row_count() == 0
    window.action("anonymise").trigger()
    assert tags.row_count() >= 1            # shown again, so found again
    window.action("anonymise").trigger()
    window.close()

    again = make_window(ViewerSettings(viewer_settings.qsettings))
    assert again.is_anonymised()
    assert again.canvas.is_anonymised()


def test_tag_filter_reduces_rows_case_insensitively(qtbot, window, spaced_dicom: Path) -> None:
    open_and_wait(qtbot, window, [spaced_dicom])
    wait_for_tags(qtbot, window)
    tags = window.tag_dock.tags
    total = tags.row_count()
    assert total == tags.total_rows() > 20
    tags.search.setText("PATIENT")
    filtered = tags.row_count()
    assert 0 < filtered < total
    for row in range(filtered):
        texts = [tags.model.index(row, col).data() for col in range(4)]
        assert any("patient" in t.lower() for t in texts)
    tags.search.setText("(0028,0030)")     # by tag
    assert tags.row_count() == 1
    assert tags.model.index(0, 1).data() == "Pixel Spacing"
    tags.search.setText("")
    assert tags.row_count() == total
    assert "tags" in tags.status.text()


def test_png_has_no_tags_but_says_why(qtbot, window, three_pngs: Path) -> None:
    open_and_wait(qtbot, window, [three_pngs])
    wait_for_tags(qtbot, window)
    assert window.tag_dock.tags.total_rows() == 0
    assert "No DICOM tags" in window.tag_dock.tags.status.text()


# ------------------------------------------------------------------------- readout and ruler
def test_status_bar_pixel_readout_in_image_units(qtbot, window, tmp_path: Path) -> None:
    stored = np.zeros((64, 80), np.uint16)
    stored[21, 37] = 1234
    path = write_dicom(tmp_path / "rescaled.dcm", stored, slope=2, intercept=-100, windows=[(1000, 3000)])
    open_and_wait(qtbot, window, [path])
    window.canvas.zoom_actual_size()
    hover(window.canvas.viewport(), window.canvas.image_to_viewport(QPointF(37.5, 21.5)))
    assert window.pixel_label.text() == "x 37  y 21  value 2368"   # 1234 × 2 − 100


@pytest.mark.parametrize(
    ("keyword", "kind", "expected"),
    [("pixel_spacing", SpacingKind.PATIENT, "50.0 mm"),
     ("imager_pixel_spacing", SpacingKind.DETECTOR, "50.0 mm at detector")],
)
def test_ruler_on_dicom_with_spacing(qtbot, window, tmp_path, keyword, kind, expected) -> None:
    path = write_dicom(tmp_path / f"{keyword}.dcm", gradient(300, 300), **{keyword: (0.5, 0.5)})
    image = open_and_wait(qtbot, window, [path])
    assert image.spacing_kind is kind
    window.canvas.zoom_actual_size()
    window.action("ruler").trigger()
    canvas = window.canvas
    with qtbot.waitSignal(canvas.measurement_added) as blocker:
        drag(canvas.viewport(), Qt.MouseButton.LeftButton,
             canvas.image_to_viewport(QPointF(100, 150)), canvas.image_to_viewport(QPointF(200, 150)))
    assert blocker.args[0].text == expected
    assert expected in window.statusBar().currentMessage()


# --------------------------------------------------------------------------- studies, navigation
def test_open_folder_of_pngs_and_page_through(qtbot, window, three_pngs: Path) -> None:
    first = open_and_wait(qtbot, window, [three_pngs])
    assert [p.name for p in window.image_paths()] == ["a_1.png", "a_2.png", "a_3.png"]
    assert first.path.name == "a_1.png"
    second = wait_for_image(qtbot, window, window.action("next_image").trigger)
    assert second.path.name == "a_2.png"
    assert float(second.pixels[0, 0]) == 20
    third = wait_for_image(qtbot, window, lambda: QTest.keyClick(window.canvas, Qt.Key.Key_PageDown))
    assert third.path.name == "a_3.png"
    assert not window.action("next_image").isEnabled()
    back = wait_for_image(qtbot, window, lambda: QTest.keyClick(window.canvas, Qt.Key.Key_PageUp))
    assert back.path.name == "a_2.png"
    back = wait_for_image(qtbot, window, lambda: QTest.keyClick(window.canvas, Qt.Key.Key_Left))
    assert back.path.name == "a_1.png"
    assert window.settings.last_folder() == str(three_pngs)


def test_study_browser_groups_dicoms_and_click_shows_image(qtbot, window, tmp_path: Path) -> None:
    study, series = "1.2.3.4", "1.2.3.4.5"
    paths = [
        write_dicom(tmp_path / f"im{i}.dcm", gradient(50, 60) // (i + 1), study_uid=study,
                    series_uid=series, instance_number=i + 1)
        for i in range(2)
    ]
    write_png(tmp_path / "other.png", np.zeros((20, 20), np.uint8))
    open_and_wait(qtbot, window, [tmp_path])
    tree = window.study_dock.tree
    assert tree.topLevelItemCount() == 2                        # the patient + "Files"
    patient = tree.topLevelItem(0)
    assert PATIENT_NAME_SHOWN in patient.text(0)
    assert patient.child(0).childCount() == 1                   # one series
    assert patient.child(0).child(0).childCount() == 2          # two images
    assert [p.name for p in window.image_paths()] == ["im0.dcm", "im1.dcm", "other.png"]
    item = tree.image_item(1)
    rect = tree.visualItemRect(item)
    image = wait_for_image(qtbot, window, lambda: QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                                                                   pos=rect.center()))
    assert image.path == paths[1]


def test_bad_file_among_good_ones_shows_a_notice(qtbot, window, tmp_path: Path) -> None:
    good1 = write_png(tmp_path / "good1.png", np.full((30, 30), 50, np.uint8))
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    good2 = write_png(tmp_path / "good2.png", np.full((30, 30), 90, np.uint8))
    # The bad file first: the viewer reports it and moves on to the first good image.
    image = open_and_wait(qtbot, window, [bad, good1, good2])
    assert image is not None and image.path.name in {"good1.png", "good2.png"}
    assert [p.path.name for p in window.problems()] == ["broken.dcm"]
    assert window.notice.isVisible()
    assert "broken.dcm" in window.notice.text()
    assert window.problems_dock.list.count() == 1
    # Every good file still opens.
    shown = {image.path.name}
    while window.action("next_image").isEnabled():
        shown.add(wait_for_image(qtbot, window, window.next_image).path.name)
    assert {"good1.png", "good2.png"} <= shown
    # Going back to the bad one: a blank view naming the reason, no dialog, no crash.
    index = [p.name for p in window.image_paths()].index("broken.dcm")
    assert wait_for_image(qtbot, window, lambda: window.show_index(index)) is None
    assert "broken.dcm" in window.canvas.message()
    window.notice.close_button.click()
    assert not window.notice.isVisible()


def test_missing_path_is_reported_not_fatal(qtbot, window, tmp_path: Path) -> None:
    window.open_paths([tmp_path / "nope.dcm"])
    assert window.problems() and "nope.dcm" in window.problems()[0].text
    assert window.current_image() is None


def test_multiframe_dicom_frame_spin(qtbot, window, tmp_path: Path) -> None:
    frames = np.stack([np.full((40, 40), v, np.uint16) for v in (100, 200, 300)])
    path = write_dicom(tmp_path / "multi.dcm", frames, windows=[(200, 400)])
    image = open_and_wait(qtbot, window, [path])
    assert image.frame_count == 3
    assert window.frame_spin.isEnabled() and window.frame_spin.maximum() == 3
    window.canvas.set_window(Window(150, 100))
    second = wait_for_image(qtbot, window, lambda: window.frame_spin.setValue(2))
    assert second.frame_index == 1 and float(second.pixels[0, 0]) == 200
    assert window.canvas.window() == Window(150, 100)       # frames keep the user's window
    third = wait_for_image(qtbot, window, window.action("next_frame").trigger)
    assert third.frame_index == 2
    assert window.frame_spin.value() == 3


def test_drop_files_opens_them(qtbot, window, three_pngs: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(three_pngs))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    image = wait_for_image(qtbot, window, lambda: window.dropEvent(event))
    assert image.path.name == "a_1.png"
    assert len(window.image_paths()) == 3


def test_recent_files_are_persisted(qtbot, make_window, viewer_settings, tmp_path: Path) -> None:
    window = make_window()
    paths = [write_png(tmp_path / f"r{i}.png", np.full((10, 10), i, np.uint8)) for i in range(12)]
    for path in paths:
        open_and_wait(qtbot, window, [path])
    window.close()
    again = make_window(ViewerSettings(viewer_settings.qsettings))
    recent = again.recent_menu_paths()
    assert len(recent) == MAX_RECENT_FILES
    assert recent[0] == str(paths[-1].resolve())
    assert str(paths[0].resolve()) not in recent
    image = wait_for_image(qtbot, again, lambda: again.menu("recent").actions()[1].trigger())
    assert image.path.name == "r10.png"


def test_geometry_is_remembered(qtbot, make_window, viewer_settings) -> None:
    # Smaller than the offscreen screen (800×600): restoreGeometry clamps to the screen.
    window = make_window(size=(700, 520))
    window.close()
    assert viewer_settings.geometry() is not None and viewer_settings.window_state() is not None
    again = ViewerSettings(viewer_settings.qsettings)
    from cxrviewer.ui.shell.main_window import MainWindow

    restored = MainWindow(settings=again)     # restores in __init__
    qtbot.addWidget(restored)
    assert restored.size().width() == 700


# ---------------------------------------------------------------------------------- the rest
def test_not_for_clinical_use_is_always_in_the_status_bar(window) -> None:
    assert window.clinical_label.text() == NOT_FOR_CLINICAL_USE
    assert window.clinical_label.isVisible()


def test_about_dialog(qtbot, window) -> None:
    dialog = AboutDialog(Path("/tmp/cxrviewer-test.log"), window)
    qtbot.addWidget(dialog)
    text = dialog.text.text()
    assert __version__ in text
    assert NOT_FOR_CLINICAL_USE in text
    assert "/tmp/cxrviewer-test.log" in text
    window.action("about").trigger()
    assert window.findChild(AboutDialog) is not None


def test_image_changed_and_add_dock_extension_points(qtbot, window, three_pngs: Path) -> None:
    from PySide6.QtWidgets import QDockWidget, QLabel

    dock = QDockWidget("AI second reader")
    dock.setObjectName("aiDock")
    dock.setWidget(QLabel("model"))
    window.add_dock(dock)
    assert dock.toggleViewAction() in window.menu("panels").actions()
    seen = []
    window.image_changed.connect(seen.append)
    open_and_wait(qtbot, window, [three_pngs])
    assert seen and seen[-1].path.name == "a_1.png"


def test_ui_does_not_import_tensorflow() -> None:
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen';"
        "from cxrviewer.ui.shell.app import create_application; app = create_application(['x']);"
        "from cxrviewer.ui.shell.main_window import MainWindow; w = MainWindow(); w.show();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**__import__('os').environ, "CXRVIEWER_LOG_DIR": "/tmp"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_notes_show_without_problem_button_and_clear_on_next_image(qtbot, window, tmp_path: Path) -> None:
    import cv2

    colour = np.zeros((30, 40, 3), np.uint8)
    colour[..., 2] = 200                       # red in BGR: a real colour image
    cv2.imwrite(str(tmp_path / "a_colour.png"), colour)
    write_png(tmp_path / "b_gray.png", np.full((30, 40), 9, np.uint8))
    image = open_and_wait(qtbot, window, [tmp_path])
    assert image.path.name == "a_colour.png" and image.notes
    assert window.notice.isVisible() and not window.notice.details_button.isVisible()
    assert not window.problems()
    wait_for_image(qtbot, window, window.next_image)
    assert not window.notice.isVisible()


def test_empty_folder_says_so(qtbot, window, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with qtbot.waitSignal(window.images_opened, timeout=30_000) as blocker:
        window.open_paths([tmp_path / "empty"])
    assert blocker.args[0] == []
    assert "No images found" in window.notice.text()
    assert window.problems() == []


def test_newest_open_wins(qtbot, window, tmp_path: Path) -> None:
    first = [write_png(tmp_path / "one" / f"{i}.png", np.full((10, 10), i, np.uint8)) for i in range(2)]
    second = write_png(tmp_path / "two" / "x.png", np.full((10, 10), 5, np.uint8))
    window.open_paths([tmp_path / "one"])
    image = open_and_wait(qtbot, window, [tmp_path / "two"])
    qtbot.wait(100)
    assert image.path == second
    assert window.image_paths() == [second]
    assert first[0] not in window.image_paths()


def test_wheel_zooms_about_the_cursor(qtbot, window, spaced_dicom: Path) -> None:
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    open_and_wait(qtbot, window, [spaced_dicom])
    canvas = window.canvas
    canvas.zoom_actual_size()
    pos = QPointF(100, 80)
    before = canvas.viewport_to_image(pos)
    event = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)
    assert canvas.zoom() == pytest.approx(1.25)
    after = canvas.viewport_to_image(pos)
    assert (after - before).manhattanLength() < 1.5
