"""Child process for `window_shown_s`: start the viewer as `python -m cxrviewer` does, report the first paint.

Run by bench/startup.py with QT_QPA_PLATFORM=offscreen and throw-away settings/log folders.
Before handing over to `cxrviewer.cli.main([])` it hooks `MainWindow.showEvent` to install
an application event filter; the first Paint event of any widget of the main window stamps
the wall clock. It then prints one JSON line and leaves at once (os._exit: no settings
written, no worker threads joined), so the parent's clock measures launch → first paint.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

TIMEOUT_MS = 120_000


def _finish(payload: dict[str, object], status: int = 0) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
    os._exit(status)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    import cxrviewer.ui.shell.main_window as main_window

    class FirstPaint(QObject):
        def __init__(self, window: QWidget) -> None:
            super().__init__()
            self._window = window
            self._done = False

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
            if (not self._done and event.type() == QEvent.Type.Paint
                    and isinstance(watched, QWidget) and watched.window() is self._window):
                self._done = True
                painted = time.time()
                loaded = "tensorflow" in sys.modules
                # let this paint finish, then report
                QTimer.singleShot(0, lambda: _finish({"painted": painted, "tensorflow_loaded": loaded}))
            return False

    original_show_event = main_window.MainWindow.showEvent
    filters: list[FirstPaint] = []

    def show_event(self, event) -> None:  # type: ignore[no-untyped-def]
        original_show_event(self, event)
        app = QApplication.instance()
        if app is not None and not filters:
            filters.append(FirstPaint(self))
            app.installEventFilter(filters[0])
            QTimer.singleShot(TIMEOUT_MS, lambda: _finish({"error": "no paint event"}, 3))

    main_window.MainWindow.showEvent = show_event  # type: ignore[method-assign]

    from cxrviewer.cli import main as cli_main

    status = cli_main([])
    _finish({"error": f"the viewer exited with status {status} before painting"}, 3)


if __name__ == "__main__":
    main()
