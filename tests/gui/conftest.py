"""GUI test setup: offscreen Qt, isolated QSettings, the bundled font, a MainWindow fixture."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"   # before any Qt import
os.environ.setdefault("QT_SCALE_FACTOR", "1")

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from cxrviewer.ui.shell.app import configure_names, load_bundled_font
from cxrviewer.ui.shell.settings import ViewerSettings


@pytest.fixture(scope="session", autouse=True)
def _isolated_qsettings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every QSettings() of the session out of the user's real settings."""
    folder = tmp_path_factory.mktemp("qsettings")
    configure_names()
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder / scope.name))
        QSettings.setPath(QSettings.Format.NativeFormat, scope, str(folder / scope.name))
    yield folder


@pytest.fixture(scope="session", autouse=True)
def _bundled_font(qapp: QApplication) -> str:
    family = load_bundled_font(qapp)
    assert family, "the bundled font resources/fonts/DejaVuSans.ttf could not be loaded"
    return family


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def viewer_settings(settings_file: Path) -> ViewerSettings:
    """Read-first mode (on by default for users) starts off here, so viewer and AI tests see the
    AI result at once; read-first tests switch it on (setting "ai/read_first" or the action)."""
    settings = ViewerSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    settings.qsettings.setValue("ai/read_first", False)
    return settings


@pytest.fixture
def make_window(qtbot, viewer_settings: ViewerSettings):
    """Factory for shown MainWindows sharing this test's settings file."""
    from cxrviewer.ui.shell.main_window import MainWindow

    def make(settings: ViewerSettings | None = None, size: tuple[int, int] = (1200, 800)) -> MainWindow:
        window = MainWindow(settings=settings or viewer_settings, log_path=Path("/tmp/cxrviewer-test.log"))
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


@pytest.fixture
def window(make_window):
    return make_window()
