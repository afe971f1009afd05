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
from PySide6.QtWidgets import QApplication, QWidget

from cxrviewer import __version__
from cxrviewer.core.errors import CxrError
from cxrviewer.core.resources import resource_path
from cxrviewer.ui.shell.settings import APPLICATION_NAME, ORGANIZATION_NAME

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


def create_application(argv: Sequence[str] | None = None, theme: str | None = None) -> QApplication:
    """The QApplication (reused if one exists) with names, font, icon and theme (`theme`, else the
    one remembered in View › Theme, dark by default) set."""
    configure_names()
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationDisplayName("cxrviewer")
    load_bundled_font(app)
    app.setWindowIcon(app_icon())
    from cxrviewer.ui.shell.theme import apply_theme, saved_theme, theme_named

    apply_theme(app, theme_named(theme) if theme else saved_theme())
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


EXIT_AFTER_SHOWN_ENV = "CXRVIEWER_EXIT_AFTER_SHOWN"


def _quit_after_first_paint(app: QApplication, window: QWidget) -> None:
    """Start-up timing ($CXRVIEWER_EXIT_AFTER_SHOWN=1): print the time of the first paint, then close.

    Prints `cxrviewer: window painted at <unix time>` on stderr; the caller subtracts its own
    start time. The window is closed properly so that background threads shut down.
    """
    import time

    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and isinstance(watched, QWidget) and watched.window() is window:
                app.removeEventFilter(self)
                QTimer.singleShot(0, finish)
            return False

    def finish() -> None:
        print(f"cxrviewer: window painted at {time.time():.3f}", file=sys.stderr, flush=True)
        window.close()
        app.quit()

    app.installEventFilter(FirstPaint(app))


def run(paths: Sequence[str | os.PathLike[str]] = ()) -> int:
    """Show the main window (opening `paths`, if any) and run the event loop."""
    log_path = _setup_logging()
    app = create_application(sys.argv[:1])
    sys.excepthook = _log_unhandled

    from cxrviewer.ui.shell.main_window import MainWindow

    window = MainWindow(log_path=log_path)
    if os.environ.get(EXIT_AFTER_SHOWN_ENV) == "1":
        _quit_after_first_paint(app, window)
    window.show()
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths([str(p) for p in paths]))
    else:
        QTimer.singleShot(0, window.reopen_last_study)   # the last study, if it is still there
    return int(app.exec())


class ScreenshotError(CxrError):
    """The screenshot could not show what was asked for (image unreadable, AI failed, timeout)."""


def render_window_screenshot(
    paths: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    size: tuple[int, int] = (1400, 900),
    timeout_ms: int = 120_000,
    *,
    wait_for_ai: bool = False,
    model: str | None = None,
    read_first: bool = False,
    anonymise: bool = False,
) -> Path:
    """Open `paths` in a MainWindow of `size`, wait for the first image, save a PNG of it.

    With `wait_for_ai`, also wait until the AI prediction and heat map of that image are
    drawn; a model or request failure, an unreadable image or `timeout_ms` passing raise
    ScreenshotError instead of saving a misleading picture. `model` picks a registered model
    instead of the default. `read_first` shows the read-first state before the call (AI result
    and heat map hidden, though computed); without it read first is off, whatever the user's
    own setting. `anonymise` hides names, IDs and birth dates in the corner text, the study
    tree and the tag dock, as View ▸ Anonymise Display does. The picture is taken once the tag
    dock lists the image's tags too.

    For `cxrviewer screenshot` and docs. Uses throw-away settings, so the user's recent files
    and layout are untouched. Works on the offscreen platform (QT_QPA_PLATFORM=offscreen).
    """
    create_application(sys.argv[:1])
    from cxrviewer.core.model.runtime import image_key
    from cxrviewer.ui.docks.read_first_panel import set_read_first_enabled
    from cxrviewer.ui.shell.main_window import MainWindow
    from cxrviewer.ui.shell.settings import ViewerSettings

    with tempfile.TemporaryDirectory(prefix="cxrviewer-shot-") as folder:
        settings = ViewerSettings(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        set_read_first_enabled(settings.qsettings, read_first)
        settings.set_anonymise(anonymise)
        window = MainWindow(settings=settings)
        try:
            if model is not None:
                window.ai.switch_model(model)
            elif not wait_for_ai:
                window.ai.disable_autostart()   # a plain-viewer picture: no model to load and wait for
            window.setFixedSize(*size)
            window.show()
            loop = QEventLoop()
            outcome: dict[str, str | None] = {"error": None}
            finished: list[bool] = []

            def finish(error: str | None = None) -> None:
                if not finished:
                    finished.append(True)
                    outcome["error"] = error
                loop.quit()

            def ai_done_for_shown_image() -> bool:
                image = window.current_image()
                cam = window.ai.shown_cam()
                return image is not None and cam is not None and cam.image_key == image_key(image)

            def tags_listed_for_shown_image() -> bool:
                image, listing = window.current_image(), window.shown_tags()
                return image is not None and listing is not None and listing.path == str(image.path)

            def finish_when_complete() -> None:
                if tags_listed_for_shown_image() and (not wait_for_ai or ai_done_for_shown_image()):
                    finish()

            def on_image_changed(image: object) -> None:
                if image is None:
                    problems = window.problems()
                    finish(problems[-1].text if problems else "the image could not be opened")
                else:
                    finish_when_complete()

            window.image_changed.connect(on_image_changed)
            window.tags_shown.connect(lambda _path: finish_when_complete())
            window.images_opened.connect(lambda found: None if found else finish("no images found"))
            if wait_for_ai:
                window.ai.overlay_updated.connect(lambda _key: finish_when_complete())
                window.ai.failed.connect(lambda message: finish(f"AI second reader: {message}"))
            seconds = timeout_ms / 1000.0
            timer = QTimer(window)
            timer.setSingleShot(True)
            timer.timeout.connect(lambda: finish(
                f"timed out after {seconds:g} s waiting for the image"
                + (" and the AI result" if wait_for_ai else "")
            ))
            timer.start(timeout_ms)
            existing = [Path(p) for p in paths if Path(p).exists()]
            window.open_paths([str(p) for p in paths])
            if paths and not existing:
                finish(f"{Path(paths[0]).name}: file or folder not found")
            elif existing and not finished:
                loop.exec()
            timer.stop()
            if outcome["error"] is not None and (wait_for_ai or window.current_image() is None):
                raise ScreenshotError(str(outcome["error"]))
            window.canvas.flush_render()
            QCoreApplication.processEvents()
            out = Path(output)
            out.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(out)):
                raise ScreenshotError(f"{out.name}: could not write the screenshot")
        finally:
            window.close()
            window.deleteLater()
            QCoreApplication.processEvents()
    return out

