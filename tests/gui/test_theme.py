"""The reading-room theme and reading mode: dark by default, Light remembered, WCAG AA contrast,
full screen with the panels hidden, Esc back; screenshots in both themes at scale 1 and 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QDockWidget

from cxrviewer.ui.shell.theme import DARK, DARK_THEME, LIGHT, LIGHT_THEME, THEME_SETTING, contrast_ratio, saved_theme

from .helpers import open_and_wait
from .image_compare import OUTPUT_DIR, qimage_to_rgb
from .image_compare import write_png as save_screenshot
from .synthetic import gradient, write_png

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_style(qapp):
    """The theme is application-wide: put the test session's look back afterwards."""
    palette, sheet, style = QPalette(qapp.palette()), qapp.styleSheet(), qapp.style().name()
    yield
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)
    qapp.setProperty("cxrviewerTheme", None)


@pytest.mark.parametrize("theme", [DARK_THEME, LIGHT_THEME], ids=[DARK, LIGHT])
def test_every_text_colour_meets_wcag_aa(theme):
    low = {name: round(contrast_ratio(*pair), 2) for name, pair in theme.pairs().items()
           if contrast_ratio(*pair) < 4.5}
    assert low == {}


def test_contrast_ratio_matches_the_wcag_reference_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_dark_is_the_default_and_light_is_remembered(tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert saved_theme(settings).name == DARK
    settings.setValue(THEME_SETTING, LIGHT)
    assert saved_theme(settings).name == LIGHT


def _mean_luminance(rgb: np.ndarray) -> float:
    return float((0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]).mean())


def test_switching_theme_recolours_every_panel_and_is_remembered(qtbot, make_window, restore_style, tmp_path):
    image = tmp_path / "chest.png"
    write_png(image, gradient(256, 224, high=255).astype(np.uint8))
    window = make_window(size=(1400, 900))
    open_and_wait(qtbot, window, [image])
    room = window.reading_room
    room.theme_actions[DARK].trigger()
    qtbot.wait(50)
    dark = qimage_to_rgb(window.grab())
    save_screenshot(OUTPUT_DIR / "theme_dark_main_window.png", dark)
    docks = [d for d in window.findChildren(QDockWidget) if d.isVisible()]
    assert docks
    for dock in docks:
        shot = qimage_to_rgb(dock.grab())
        assert _mean_luminance(shot) < 90, f"{dock.objectName()} is bright in the dark theme"
    assert window.settings.qsettings.value(THEME_SETTING) == DARK
    room.theme_actions[LIGHT].trigger()
    qtbot.wait(50)
    light = qimage_to_rgb(window.grab())
    save_screenshot(OUTPUT_DIR / "theme_light_main_window.png", light)
    assert _mean_luminance(qimage_to_rgb(docks[0].grab())) > 150
    assert window.settings.qsettings.value(THEME_SETTING) == LIGHT
    assert room.theme_actions[LIGHT].isChecked() and not room.theme_actions[DARK].isChecked()


def test_reading_mode_shows_only_the_image_and_escape_brings_the_panels_back(qtbot, make_window, tmp_path):
    image = tmp_path / "chest.png"
    write_png(image, gradient(256, 224, high=255).astype(np.uint8))
    window = make_window(size=(1200, 800))
    open_and_wait(qtbot, window, [image])
    visible_before = {d.objectName() for d in window.findChildren(QDockWidget) if d.isVisible()}
    window.reading_room.enter_reading_mode()
    qtbot.wait(50)
    assert window.reading_room.in_reading_mode()
    assert not [d for d in window.findChildren(QDockWidget) if d.isVisible()]
    assert not window.menuBar().isVisible() and not window.statusBar().isVisible()
    assert window.canvas.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.wait(50)
    assert not window.reading_room.in_reading_mode()
    assert {d.objectName() for d in window.findChildren(QDockWidget) if d.isVisible()} == visible_before
    assert window.menuBar().isVisible()


def test_tab_on_the_image_hides_and_shows_the_panels(qtbot, make_window, tmp_path):
    from PySide6.QtCore import Qt

    window = make_window(size=(1200, 800))
    window.canvas.setFocus()
    qtbot.waitUntil(window.canvas.hasFocus, timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Tab)
    assert window.reading_room.hide_panels_action.isChecked()
    assert not window.study_dock.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Tab)
    assert not window.reading_room.hide_panels_action.isChecked() and window.study_dock.isVisible()


SHOT = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QSettings
from cxrviewer.ui.shell.app import create_application
from cxrviewer.ui.shell.main_window import MainWindow
from cxrviewer.ui.shell.settings import ViewerSettings
app = create_application(["x"], theme=sys.argv[1])
settings = ViewerSettings(QSettings(sys.argv[3], QSettings.Format.IniFormat))
window = MainWindow(settings=settings)
window.ai.disable_autostart()
window.resize(1200, 800)
window.show()
app.processEvents()
pixmap = window.grab()
print("DPR", pixmap.devicePixelRatio(), pixmap.width(), pixmap.height())
pixmap.save(sys.argv[2])
window.close()
"""


@pytest.mark.parametrize("theme", [DARK, LIGHT])
@pytest.mark.parametrize("scale", ["1", "2"])
def test_the_window_renders_at_device_pixel_ratio_two(theme, scale, tmp_path):
    out = OUTPUT_DIR / f"theme_{theme}_scale{scale}.png"
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QT_SCALE_FACTOR": scale, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", SHOT, theme, str(out), str(tmp_path / "s.ini")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(text for text in done.stdout.splitlines() if text.startswith("DPR"))
    _, ratio, width, height = line.split()
    assert float(ratio) == float(scale)
    assert (int(width), int(height)) == (1200 * int(scale), 800 * int(scale))   # device pixels, not upscaled
    from PySide6.QtGui import QImage

    rgb = qimage_to_rgb(QImage(str(out)))
    luminance = _mean_luminance(rgb)
    assert (luminance < 90) if theme == DARK else (luminance > 150)
