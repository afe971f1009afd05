"""Child process for the memory figure: open a folder in the viewer and step through every image.

Usage: memory_driver.py FOLDER COUNT. Builds a MainWindow with throw-away settings (offscreen),
opens FOLDER, shows images 0 … COUNT-1 one after another through `MainWindow.show_index` (the
loader thread, its cache, the canvas, the tag cache), and prints one JSON line with the RSS
after the first image and after the last. Run with CXRVIEWER_MODELS_DIR pointing to an empty
folder so that only the image path is measured.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
from pathlib import Path

TIMEOUT_MS = 60_000


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    folder, count = Path(sys.argv[1]), int(sys.argv[2])

    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from bench.timing import rss_mb
    from cxrviewer.ui.shell.app import create_application
    from cxrviewer.ui.shell.main_window import MainWindow
    from cxrviewer.ui.shell.settings import ViewerSettings

    create_application(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="cxrbench-memory-") as scratch:
        settings = ViewerSettings(QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings=settings)
        window.resize(1400, 900)
        window.show()

        def wait_for(signal, start) -> object:  # type: ignore[no-untyped-def]
            loop = QEventLoop()
            received: list[object] = []

            def done(*args: object) -> None:
                received.append(args)
                loop.quit()

            signal.connect(done)
            timer = QTimer()
            timer.setSingleShot(True)
            timer.timeout.connect(loop.quit)
            timer.start(TIMEOUT_MS)
            start()
            if not received:
                loop.exec()
            signal.disconnect(done)
            if not received:
                raise TimeoutError("the viewer did not answer in time")
            return received[0]

        opened = wait_for(window.images_opened, lambda: window.open_paths([str(folder)]))
        total = min(count, len(opened[0]))  # type: ignore[index]
        first_rss = None
        for index in range(total):
            if index == 0 and window.current_image() is None:
                wait_for(window.image_changed, lambda: None)   # open_paths shows image 0 itself
            elif index > 0:
                wait_for(window.image_changed, lambda index=index: window.show_index(index))
            flush = getattr(window.canvas, "flush_render", None)
            if flush is not None:
                flush()
            if index == 0:
                gc.collect()
                first_rss = rss_mb()
        gc.collect()
        last_rss = rss_mb()
        sys.stdout.write(json.dumps({"images": total, "rss_first_mb": first_rss, "rss_last_mb": last_rss}) + "\n")
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
