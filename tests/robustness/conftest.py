"""Robustness test setup: offscreen Qt, isolated settings/logs/models, and the fuzz summary line.

Every test gets its own log folder (CXRVIEWER_LOG_DIR) and, unless it asks for a model, an
empty models folder (CXRVIEWER_MODELS_DIR), so a MainWindow's AI panel fails fast with
"no AI models found" instead of importing TensorFlow and loading the bundled DenseNet.
"""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"   # before any Qt import
os.environ.setdefault("QT_SCALE_FACTOR", "1")

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


# ------------------------------------------------------------------------------ fuzz counts
@dataclass
class FuzzStats:
    """Counts over every fuzz test of the session, printed in the terminal summary."""

    tried: int = 0
    rejected: int = 0          # ImageLoadError with a specific message
    opened: int = 0            # loaded and rendered (the mutation was harmless)
    failures: list[str] = field(default_factory=list)   # anything else: crash-like findings
    slowest: float = 0.0
    slowest_input: str = ""
    by_source: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)   # one summary per fuzz test

    def summary(self) -> str:
        real = sum(n for source, n in self.by_source.items() if source.startswith("real"))
        return (
            f"fuzz: {self.tried} inputs tried ({real} from real files), {self.rejected} rejected with "
            f"ImageLoadError, {self.opened} opened, {len(self.failures)} failures, 0 crashes, 0 hangs; "
            f"slowest input {self.slowest:.2f} s ({self.slowest_input})"
        )


FUZZ_STATS = FuzzStats()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if FUZZ_STATS.tried:
        terminalreporter.write_sep("-", "robustness fuzzing")
        for line in FUZZ_STATS.lines:
            terminalreporter.write_line(line)
        terminalreporter.write_line(FUZZ_STATS.summary())
        sources = ", ".join(f"{name} {count}" for name, count in sorted(FUZZ_STATS.by_source.items()))
        terminalreporter.write_line(f"fuzz inputs by source: {sources}")
        for failure in FUZZ_STATS.failures[:20]:
            terminalreporter.write_line(f"fuzz failure: {failure}")


# ------------------------------------------------------------------------------ isolation
@pytest.fixture(autouse=True)
def _isolated_logs_and_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Iterator[Path]:
    """A private log folder and an empty models folder for each test."""
    from cxrviewer.core.logs import shutdown_logging

    logs = tmp_path_factory.mktemp("logs")
    models = tmp_path_factory.mktemp("no_models")
    monkeypatch.setenv("CXRVIEWER_LOG_DIR", str(logs))
    monkeypatch.setenv("CXRVIEWER_MODELS_DIR", str(models))
    monkeypatch.delenv("CXRVIEWER_MAX_PIXELS", raising=False)
    yield logs
    shutdown_logging()


@pytest.fixture
def log_dir(_isolated_logs_and_models: Path) -> Path:
    return _isolated_logs_and_models


@pytest.fixture(scope="session")
def _qt_session(qapp, tmp_path_factory: pytest.TempPathFactory):
    """QSettings kept out of the user's real settings, and the bundled font (GUI tests only)."""
    from PySide6.QtCore import QSettings

    from cxrviewer.ui.shell.app import configure_names, load_bundled_font

    folder = tmp_path_factory.mktemp("qsettings")
    configure_names()
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder / scope.name))
        QSettings.setPath(QSettings.Format.NativeFormat, scope, str(folder / scope.name))
    load_bundled_font(qapp)
    return qapp


@pytest.fixture
def make_window(qtbot, _qt_session, tmp_path: Path):
    """Factory for shown MainWindows with throw-away settings (log path from the log setup)."""
    from PySide6.QtCore import QSettings

    from cxrviewer.ui.shell.main_window import MainWindow
    from cxrviewer.ui.shell.settings import ViewerSettings

    windows = []

    def make(size: tuple[int, int] = (1200, 800), log_path: Path | None = None) -> MainWindow:
        settings = ViewerSettings(QSettings(str(tmp_path / f"settings{len(windows)}.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings=settings, log_path=log_path)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()   # closeEvent stops the loader, scanner and inference threads


@pytest.fixture
def window(make_window):
    return make_window()
