"""Default layout: the Studies dock shows at least 10 rows; the Layer box keeps room for its label."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QTreeView

from .synthetic import gradient, write_png


def test_the_studies_dock_shows_at_least_ten_rows_at_the_default_size(qtbot, make_window, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for number in range(14):
        write_png(folder / f"image_{number:02d}.png", np.roll(gradient(64, 64, high=255).astype(np.uint8), number, 1))
    from PySide6.QtWidgets import QApplication

    from cxrviewer.ui.shell.theme import DARK_THEME, apply_theme

    apply_theme(QApplication.instance(), DARK_THEME)   # as the viewer starts (the look is restored after the test)
    window = make_window(size=(1400, 900))
    window.trainee.apply_default_layout()
    with qtbot.waitSignal(window.image_changed, timeout=60_000):
        window.open_paths([str(folder)])
    tree = window.study_dock.findChild(QTreeView)
    qtbot.waitUntil(lambda: tree.model() is not None and tree.model().rowCount() > 0, timeout=10_000)
    tree.expandAll()
    qtbot.wait(50)
    index = tree.model().index(0, 0)
    while tree.model().rowCount(index):
        index = tree.model().index(0, 0, index)
    row_height = tree.visualRect(index).height()
    assert row_height > 0
    rows_visible = tree.viewport().height() // row_height
    assert rows_visible >= 10, f"{rows_visible} rows of {row_height} px in a {tree.viewport().height()} px view"


def test_the_layer_box_keeps_its_minimum_width(make_window):
    window = make_window(size=(1400, 900))
    assert window.ai.controls.layer_combo.minimumContentsLength() == 14


def test_exports_default_to_a_user_folder_and_remember_the_last_one(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from cxrviewer.ui.shell.settings import ViewerSettings

    monkeypatch.setenv("XDG_PICTURES_DIR", str(tmp_path / "Pictures"))
    settings = ViewerSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set_last_folder(tmp_path / "case_folder")
    default = settings.export_folder()
    assert default.endswith("cxrviewer") and "case_folder" not in default
    chosen = tmp_path / "my_exports"
    chosen.mkdir()
    settings.set_export_folder(chosen)
    assert settings.export_folder() == str(chosen)
