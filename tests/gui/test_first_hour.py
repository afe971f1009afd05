"""Issue #13, the rough edges a trainee hits in the first hour: remembered settings, chest
window presets, the shortcut sheet, stale and clipped bits of the layout, export folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.xai.overlay_style import CONTOURS

from .helpers import open_and_wait, wait_for_image
from .synthetic import write_png


@pytest.fixture
def two_pngs(tmp_path: Path) -> Path:
    folder = tmp_path / "case"
    write_png(folder / "a.png", np.full((40, 50), 10, np.uint8))
    write_png(folder / "b.png", np.tile(np.arange(50, dtype=np.uint8) * 5, (40, 1)))
    return folder


# ------------------------------------------------------------------- remembered between runs
def test_heat_map_settings_are_remembered(make_window) -> None:
    first = make_window()
    controls = first.ai.controls
    controls.set_opacity(0.6)
    controls.set_threshold(0.55)
    controls.set_colormap("jet")
    controls.set_style(CONTOURS)
    controls.set_normalisation("absolute")
    first.close()

    again = make_window().ai.controls
    assert again.opacity() == pytest.approx(0.6) and again.threshold() == pytest.approx(0.55)
    assert again.colormap() == "jet" and again.style() == CONTOURS and again.normalisation() == "absolute"


def test_a_colour_map_this_version_lacks_is_ignored(make_window, viewer_settings) -> None:
    viewer_settings.set_heatmap_value("colormap", "rainbow-unicorn")
    viewer_settings.set_heatmap_value("opacity", "not a number")
    controls = make_window().ai.controls
    assert controls.colormap() == "inferno" and controls.opacity() == pytest.approx(0.35)


def test_the_last_study_is_reopened_if_it_still_exists(qtbot, make_window, two_pngs: Path) -> None:
    first = make_window()
    open_and_wait(qtbot, first, [two_pngs])
    first.close()

    again = make_window()
    image = wait_for_image(qtbot, again, again.reopen_last_study)
    assert image is not None and again.image_paths() == [two_pngs / "a.png", two_pngs / "b.png"]


def test_a_last_study_that_is_gone_opens_nothing_and_reports_nothing(qtbot, make_window, viewer_settings,
                                                                      tmp_path: Path) -> None:
    viewer_settings.set_last_study([tmp_path / "moved-away"])
    window = make_window()
    assert window.reopen_last_study() is False
    qtbot.wait(50)
    assert window.image_paths() == [] and window.problems() == []


# ------------------------------------------------------------------------- chest presets
def test_chest_presets_on_a_radiograph_are_relative_and_the_active_one_is_ticked(qtbot, window, two_pngs) -> None:
    from cxrviewer.core.imaging import percentile_window

    image = wait_for_image(qtbot, window, lambda: window.open_paths([two_pngs / "b.png"]))
    actions = window.preset_actions()
    lung = next(a for a in actions if a.text().startswith("Lung (relative)"))
    names = [a.text().split("   ")[0] for a in actions]
    assert {"Lung (relative)", "Mediastinum (relative)", "Bone (relative)"} <= set(names)
    assert "Hounsfield" in lung.toolTip() and window.menu("presets").toolTipsVisible()
    lung.trigger()
    span = percentile_window(image.pixels)
    low = span.center - span.width / 2
    assert window.canvas.window().center == pytest.approx(low + 0.35 * span.width)
    assert window.canvas.window().width == pytest.approx(0.70 * span.width)
    assert [a for a in actions if a.isChecked()] == [lung]
    # the toolbar's Window button opens the same, ticked menu
    from PySide6.QtWidgets import QToolButton

    button = window.findChild(QToolButton, "presetsButton")
    assert button.menu() is window.menu("presets") and lung in button.menu().actions()
    lung.trigger()                      # a second click on the ticked preset keeps the tick
    assert lung.isChecked()
    bone = next(a for a in actions if a.text().startswith("Bone"))
    bone.trigger()
    assert [a for a in actions if a.isChecked()] == [bone]


# ------------------------------------------------------------------------- shortcut sheet
def test_shortcut_sheet_lists_every_action_with_a_shortcut_and_filters(qtbot, window, two_pngs) -> None:
    from PySide6.QtGui import QAction, QKeySequence

    from cxrviewer.ui.dialogs.shortcut_sheet import ShortcutSheet

    open_and_wait(qtbot, window, [two_pngs / "b.png"])   # presets (Ctrl+1 …) exist once an image is shown
    assert window.action("shortcuts").shortcut() == QKeySequence("F1")
    assert window.action("shortcuts") in window.menu("help").actions()
    window.action("shortcuts").trigger()
    sheet = window.findChild(ShortcutSheet)
    assert sheet is not None and sheet.isVisible()
    listed = {row.keys for row in sheet.rows()}
    for action in window.findChildren(QAction):     # read from the actions: never stale
        for key in action.shortcuts():
            assert any(key.toString(QKeySequence.SequenceFormat.NativeText) in keys for keys in listed), action.text()
    commands = [row.command for row in sheet.rows()]
    assert "Show Heat Map" in commands and "Keyboard Shortcuts" in commands   # the AI's own action too
    assert any(c.startswith("Lung (relative)") for c in commands) and "Next image (on the image)" in commands
    sheet.search.setText("zoom")
    visible = sheet.visible_rows()
    assert visible and all("zoom" in row.command.lower() for row in visible)
    sheet.search.setText("ctrl+shift+a")
    assert [row.command for row in sheet.visible_rows()] == ["Anonymise Display"]


# ------------------------------------------------------------------------- stale and clipped
def test_pixel_readout_does_not_keep_the_previous_images_value(qtbot, window, two_pngs) -> None:
    from PySide6.QtCore import QPointF

    from .helpers import hover

    open_and_wait(qtbot, window, [two_pngs])
    hover(window.canvas.viewport(), window.canvas.image_to_viewport(QPointF(10.5, 10.5)))
    assert window.pixel_label.text().startswith("x 10  y 10")
    wait_for_image(qtbot, window, window.next_image)
    assert "value 10" not in window.pixel_label.text()   # a.png's value is gone
    wait_for_image(qtbot, window, lambda: window._show_nothing("gone"))
    assert window.pixel_label.text() == ""
