"""Compare view (#16): a second viewport, linked both ways, fed by menu, tree row or drop."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from cxrviewer.core.types import Window
from cxrviewer.ui.docks.study_browser import BrowserEntry
from cxrviewer.ui.viewer.compare import (
    CompareController,
    ComparePane,
    linked_window,
    orientation_steps,
    prior_candidates,
    study_date,
)

from .helpers import LOAD_TIMEOUT_MS, drag, open_and_wait
from .synthetic import gradient, write_dicom, write_png

OUTPUT = Path(__file__).parent / "_output"


def _compare_and_wait(qtbot, compare: CompareController, path: Path):
    with qtbot.waitSignal(compare.compare_image_changed, timeout=LOAD_TIMEOUT_MS) as blocker:
        compare.compare_with(path)
    compare.canvas.flush_render()
    return blocker.args[0]


def _centre_fraction(canvas) -> tuple[float, float]:
    """The image point at the view centre, in fractions of the image's width and height."""
    point = canvas.viewport_to_image(QPointF(canvas.viewport().rect().center()))
    height, width = canvas.image().shape
    return point.x() / width, point.y() / height


def _relative_zoom(compare: CompareController, canvas) -> float:
    return canvas.zoom() / compare._fit_zoom(canvas)


@pytest.fixture
def two_pngs(tmp_path: Path) -> tuple[Path, Path]:
    ramp = gradient(200, 300)
    return write_png(tmp_path / "current.png", ramp), write_png(tmp_path / "prior.png", np.fliplr(ramp).copy())


@pytest.fixture
def compared(qtbot, window, two_pngs):
    open_and_wait(qtbot, window, [two_pngs[0]])
    compare: CompareController = window.compare
    image = _compare_and_wait(qtbot, compare, two_pngs[1])
    assert image is not None and image.path == two_pngs[1]
    return window, compare


# ------------------------------------------------------------------------ pure helpers
def test_linked_window_keeps_the_change_relative_to_each_default() -> None:
    same = linked_window(Window(500, 200), Window(400, 800), Window(400, 800))
    assert same == Window(500, 200)
    scaled = linked_window(Window(500, 400), Window(400, 800), Window(40, 80))
    assert scaled.center == pytest.approx(50) and scaled.width == pytest.approx(40)


def test_orientation_steps_reach_every_orientation() -> None:
    from cxrviewer.ui.viewer.compare import _OPS, _compose

    identity = (1, 0, 0, 1)
    reachable = {identity}
    for _ in range(4):
        reachable |= {_compose(op, m) for m in reachable for op in _OPS.values()}
    assert len(reachable) == 8
    for goal in reachable:
        matrix = identity
        for name in orientation_steps(identity, goal):
            matrix = _compose(_OPS[name], matrix)
        assert matrix == goal
    assert orientation_steps(identity, identity) == []


def test_prior_candidates_same_patient_other_studies_newest_first() -> None:
    def entry(name: str, pid: str, study: str, date: str) -> BrowserEntry:
        return BrowserEntry(Path(name), name, patient_key=f"p:{pid}", patient_id=pid,
                            study_key=study, study_label=f"{date} Chest PA")

    entries = [
        entry("old.dcm", "A", "s1", "20200101"), entry("mid.dcm", "A", "s2", "20220101"),
        entry("now.dcm", "A", "s3", "20240101"), entry("now2.dcm", "A", "s3", "20240101"),
        entry("other.dcm", "B", "s4", "20230101"),
    ]
    names = [e.path.name for e in prior_candidates(entries, Path("now.dcm"))]
    assert names == ["mid.dcm", "old.dcm"]
    assert study_date(entries[0]) == "20200101"
    assert prior_candidates(entries, None) == []


# ------------------------------------------------------------------------------ the view
def test_a_long_compare_title_elides_in_the_middle_keeping_the_end(qtbot) -> None:
    """The header showed "person1000_bacteria_2931.jp" (clipped): the number and extension that tell
    two names apart were cut off. It elides in the middle now; text() stays the full name."""
    pane = ComparePane()
    qtbot.addWidget(pane)
    pane.resize(330, 300)
    pane.show()
    qtbot.waitExposed(pane)
    name = "person1000_bacteria_2931_follow_up_portable.jpeg"
    pane.title.setText(name)
    shown = pane.title.shown_text()
    assert pane.title.text() == name
    assert "…" in shown and shown.startswith("person") and shown.endswith(".jpeg")
    assert pane.title.fontMetrics().horizontalAdvance(shown) <= pane.title.contentsRect().width()
    pane.resize(1200, 300)
    qtbot.waitUntil(lambda: pane.title.shown_text() == name, timeout=2000)


def test_compare_opens_a_second_view_and_closing_returns_to_one(qtbot, window, two_pngs) -> None:
    open_and_wait(qtbot, window, [two_pngs[0]])
    compare = window.compare
    assert compare.pane.isHidden() and not compare.is_open()
    assert compare.is_linked()   # on by default
    compare.compare_action.trigger()
    assert compare.is_open() and compare.pane.isVisible()
    assert "drop an image" in compare.canvas.message()
    left, right = compare.splitter.sizes()
    assert left > 100 and right > 100 and abs(left - right) <= 2
    image = _compare_and_wait(qtbot, compare, two_pngs[1])
    assert compare.image() is image and window.current_image().path == two_pngs[0]
    assert compare.pane.title.text() == "prior.png"

    compare.close_action.trigger()
    assert not compare.is_open() and compare.pane.isHidden()
    assert compare.image() is None
    assert window.canvas.isVisible() and window.canvas.image() is not None
    assert compare.splitter.sizes()[1] == 0 or compare.pane.isHidden()


def test_link_window_zoom_pan_rotation_flip_both_ways(qtbot, compared) -> None:
    window, compare = compared
    main, other = window.canvas, compare.canvas

    main.set_window(Window(1234, 567))
    assert other.window() == Window(1234, 567)
    other.set_window(Window(2000, 900))
    assert main.window() == Window(2000, 900)

    main.set_zoom(main.zoom() * 2.0)
    assert _relative_zoom(compare, other) == pytest.approx(_relative_zoom(compare, main), rel=1e-3)
    other.zoom_in()
    assert _relative_zoom(compare, main) == pytest.approx(_relative_zoom(compare, other), rel=1e-3)

    centre = QPointF(main.viewport().rect().center())
    drag(main.viewport(), Qt.MouseButton.LeftButton, centre, centre + QPointF(60, 40))
    assert _centre_fraction(main) != pytest.approx((0.5, 0.5), abs=0.01)   # it did pan
    assert _centre_fraction(other) == pytest.approx(_centre_fraction(main), abs=0.01)
    drag(other.viewport(), Qt.MouseButton.LeftButton, centre, centre - QPointF(90, 20))
    assert _centre_fraction(main) == pytest.approx(_centre_fraction(other), abs=0.01)

    main.rotate_clockwise()
    assert other.orientation() == main.orientation() != (1, 0, 0, 1)
    other.flip_horizontal()
    assert main.orientation() == other.orientation()
    main.flip_vertical()
    other.rotate_counterclockwise()
    assert main.orientation() == other.orientation()
    window.action("invert").trigger()
    assert other.is_inverted() and main.is_inverted()
    assert _centre_fraction(other) == pytest.approx(_centre_fraction(main), abs=0.01)

    main.reset_view()
    assert other.orientation() == (1, 0, 0, 1) and other.is_fit_mode()
    assert other.window() == main.window()


def test_unlink_keeps_each_side_its_own_and_relinking_follows_the_main_image(qtbot, compared) -> None:
    window, compare = compared
    main, other = window.canvas, compare.canvas
    compare.link_action.trigger()
    assert not compare.is_linked()
    before_window, before_orientation = other.window(), other.orientation()
    main.set_window(Window(1111, 222))
    main.rotate_clockwise()
    main.set_zoom(main.zoom() * 3)
    assert other.window() == before_window
    assert other.orientation() == before_orientation
    assert other.is_fit_mode()
    other.flip_horizontal()
    assert main.orientation() == (0, -1, 1, 0)   # unchanged by the other side

    compare.set_linked(True)
    assert other.window() == main.window()
    assert other.orientation() == main.orientation()
    assert _relative_zoom(compare, other) == pytest.approx(_relative_zoom(compare, main), rel=1e-3)


def test_images_of_different_sizes_stay_aligned(qtbot, window, tmp_path: Path) -> None:
    big = write_png(tmp_path / "big.png", gradient(400, 600))
    small = write_png(tmp_path / "small.png", gradient(100, 150))
    open_and_wait(qtbot, window, [big])
    compare = window.compare
    _compare_and_wait(qtbot, compare, small)
    main, other = window.canvas, compare.canvas
    main.set_zoom(main.zoom() * 2.5, QPointF(40, 30))
    assert _relative_zoom(compare, other) == pytest.approx(_relative_zoom(compare, main), rel=1e-3)
    assert _centre_fraction(other) == pytest.approx(_centre_fraction(main), abs=0.01)


def test_a_file_dropped_on_the_pane_is_compared(qtbot, window, two_pngs) -> None:
    open_and_wait(qtbot, window, [two_pngs[0]])
    compare = window.compare
    compare.set_open(True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(two_pngs[1]))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(compare.compare_image_changed, timeout=LOAD_TIMEOUT_MS) as blocker:
        compare.pane.dropEvent(event)
    assert blocker.args[0].path == two_pngs[1]
    assert window.image_paths() == [two_pngs[0]]   # the main list is untouched


def test_compare_with_this_on_a_study_tree_row(qtbot, window, two_pngs) -> None:
    open_and_wait(qtbot, window, list(two_pngs))
    compare = window.compare
    tree = window.study_dock.tree
    assert compare.context_menu_for(tree.topLevelItem(0)) is None   # a patient row
    index = window.image_paths().index(two_pngs[1])
    menu = compare.context_menu_for(tree.image_item(index))
    assert menu is not None
    action = next(a for a in menu.actions() if a.text() == "Compare with this")
    with qtbot.waitSignal(compare.compare_image_changed, timeout=LOAD_TIMEOUT_MS) as blocker:
        action.trigger()
    assert blocker.args[0].path == two_pngs[1] and compare.is_open()


def test_a_file_that_cannot_be_opened_is_reported(qtbot, window, two_pngs, tmp_path: Path) -> None:
    open_and_wait(qtbot, window, [two_pngs[0]])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    compare = window.compare
    with qtbot.waitSignal(window.problem_reported, timeout=LOAD_TIMEOUT_MS):
        compare.compare_with(broken)
    assert compare.image() is None and "Could not open" in compare.canvas.message()


def test_priors_of_the_same_patient_come_first_newest_first(qtbot, window, tmp_path: Path) -> None:
    paths = []
    for date in ("20200110", "20240315", "20220620"):
        path = write_dicom(tmp_path / f"study_{date}.dcm", gradient(120, 160))
        ds = pydicom.dcmread(path)
        ds.StudyDate = date
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    write_dicom(tmp_path / "someone_else.dcm", gradient(120, 160), patient_id="OTHER", patient_name="Roe^Rick")
    open_and_wait(qtbot, window, [tmp_path])
    newest = window.image_paths().index(paths[1])
    with qtbot.waitSignal(window.image_changed, timeout=LOAD_TIMEOUT_MS):
        window.show_index(newest)
    compare = window.compare
    assert [e.path.name for e in compare.prior_candidates()] == ["study_20220620.dcm", "study_20200110.dcm"]

    compare._rebuild_compare_with_menu()
    actions = [a for a in compare.compare_with_menu.actions() if a.data()]
    assert [Path(a.data()).name for a in actions] == ["study_20220620.dcm", "study_20200110.dcm"]
    assert actions[0].text().startswith("2022-06-20")
    assert compare.compare_with_menu.actions()[-1] is compare.other_file_action
    with qtbot.waitSignal(compare.compare_image_changed, timeout=LOAD_TIMEOUT_MS) as blocker:
        actions[0].trigger()
    assert blocker.args[0].path.name == "study_20220620.dcm"


def test_compare_view_screenshot(qtbot, make_window, two_pngs) -> None:
    window = make_window(size=(1400, 800))
    open_and_wait(qtbot, window, [two_pngs[0]])
    compare = window.compare
    _compare_and_wait(qtbot, compare, two_pngs[1])
    window.canvas.set_zoom(window.canvas.zoom() * 1.5)
    window.canvas.rotate_clockwise()
    window.canvas.set_window(Window(2000, 2500))
    window.canvas.flush_render()
    compare.canvas.flush_render()
    qtbot.wait(50)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    target = OUTPUT / "compare_view.png"
    assert window.grab().save(str(target))
    assert target.stat().st_size > 0
