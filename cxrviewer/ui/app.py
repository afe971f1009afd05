"""Start the GUI: QApplication, names for QSettings, the bundled font and icon, MainWindow."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from cxrviewer import __version__
from cxrviewer.core.resources import resource_path
from cxrviewer.ui.settings import APPLICATION_NAME, ORGANIZATION_NAME

log = logging.getLogger(__name__)

FONT_FILE = "DejaVuSans.ttf"
FONT_POINT_SIZE = 10
ICON_FILE = "cxrviewer.svg"


def configure_names() -> None:
    """Organisation/application names (QSettings location) and INI settings everywhere."""
    QCoreApplication.setOrganizationName(ORGANIZATION_NAME)
    QCoreApplication.setApplicationName(APPLICATION_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)


def load_bundled_font(app: QGuiApplication | None = None, point_size: int = FONT_POINT_SIZE) -> str | None:
    """Register the bundled DejaVu Sans and make it the application font.

    Returns the family name, or None when the font file is missing or unreadable (the
    platform default is kept then). Text then renders the same on every machine, which
    also keeps screenshot tests stable.
    """
    app = app or QGuiApplication.instance()
    path = resource_path("fonts", FONT_FILE)
    if app is None or not path.is_file():
        log.warning("bundled font not found at %s", path)
        return None
    font_id = QFontDatabase.addApplicationFont(str(path))
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        log.warning("could not load bundled font %s", path)
        return None
    font = QFont(families[0], point_size)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    QGuiApplication.setFont(font)
    return families[0]


def app_icon() -> QIcon:
    path = resource_path("icons", ICON_FILE)
    return QIcon(str(path)) if path.is_file() else QIcon()


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists) with names, font and icon set."""
    configure_names()
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationDisplayName("cxrviewer")
    load_bundled_font(app)
    app.setWindowIcon(app_icon())
    return app


def _setup_logging() -> Path | None:
    try:
        from cxrviewer.core.logs import setup_logging
    except ImportError:
        return None
    try:
        return setup_logging()
    except Exception:   # logging must never stop the viewer from starting
        traceback.print_exc()
        return None


def _log_unhandled(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Keep the application alive on an error in a slot; the log keeps the traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    log.error("unhandled error", exc_info=(kind, value, tb))
    traceback.print_exception(kind, value, tb)


def run(paths: Sequence[str | os.PathLike[str]] = ()) -> int:
    """Show the main window (opening `paths`, if any) and run the event loop."""
    log_path = _setup_logging()
    app = create_application(sys.argv[:1])
    sys.excepthook = _log_unhandled

    from cxrviewer.ui.main_window import MainWindow

    window = MainWindow(log_path=log_path)
    window.show()
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths([str(p) for p in paths]))
    return int(app.exec())


def render_window_screenshot(
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    size: tuple[int, int] = (1400, 900),
    timeout_ms: int = 120_000,
) -> Path:
    """Open `paths` in a MainWindow of `size`, wait for the first image, save a PNG of it.

    For `cxrviewer screenshot` and docs. Uses throw-away settings, so the user's recent files
    and layout are untouched. Works on the offscreen platform (QT_QPA_PLATFORM=offscreen).
    """
    create_application(sys.argv[:1])
    from cxrviewer.ui.main_window import MainWindow
    from cxrviewer.ui.settings import ViewerSettings

    with tempfile.TemporaryDirectory(prefix="cxrviewer-shot-") as folder:
        settings = ViewerSettings(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings=settings)
        window.setFixedSize(*size)
        window.show()
        loop = QEventLoop()
        window.image_changed.connect(lambda _image: loop.quit())
        window.images_opened.connect(lambda found: None if found else loop.quit())
        QTimer.singleShot(timeout_ms, loop.quit)
        window.open_paths([str(p) for p in paths])
        if any(Path(p).exists() for p in paths):
            loop.exec()
        window.canvas.flush_render()
        QCoreApplication.processEvents()
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(out)):
            raise OSError(f"could not write screenshot {out}")
        window.close()
        window.deleteLater()
    return out
