"""Application start-up: names, bundled font and icon, run(), `python -m cxrviewer`."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QFontInfo
from PySide6.QtWidgets import QApplication

from cxrviewer.ui.shell import app as app_module
from cxrviewer.ui.shell.main_window import MainWindow

from .synthetic import write_png


def test_names_font_and_icon(qapp) -> None:
    app = app_module.create_application()
    assert app is qapp
    assert QCoreApplication.organizationName() == "cxrviewer"
    assert QCoreApplication.applicationName() == "cxrviewer"
    assert QFontInfo(QApplication.font()).family() == "DejaVu Sans"
    assert not app_module.app_icon().isNull()


def test_run_shows_the_window_and_opens_paths(qapp, qtbot, monkeypatch, tmp_path: Path) -> None:
    image = write_png(tmp_path / "one.png", np.full((20, 30), 7, np.uint8))
    shown: list[MainWindow] = []

    def fake_exec() -> int:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        shown.append(window)
        qtbot.waitUntil(lambda: window.current_image() is not None, timeout=30_000)
        window.close()
        return 0

    monkeypatch.setattr(app_module, "_setup_logging", lambda: tmp_path / "cxrviewer.log")
    monkeypatch.setattr(qapp, "exec", fake_exec)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    assert app_module.run([image]) == 0
    assert shown and shown[0].current_image().path == image
    assert shown[0].log_path == tmp_path / "cxrviewer.log"
    shown[0].deleteLater()


def test_main_module_delegates_to_cli() -> None:
    source = (Path(app_module.__file__).parents[2] / "__main__.py").read_text()
    assert "from cxrviewer.cli import main" in source
