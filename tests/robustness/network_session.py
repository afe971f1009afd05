"""A full offline session in a fresh process, with the network guard installed before anything else.

Run by test_no_network.py as `python -m tests.robustness.network_session MODELS_DIR IMAGE... --out JSON`.
The session: the main window (its AI panel loads the model from MODELS_DIR: TensorFlow is
imported inside the session), opening the images, waiting for the AI panel's prediction, an
InferenceService of its own predicting with a heat map, the About dialog, closing the window;
then the command line: `render` and `selftest` (prediction + CAM). Writes what the guard saw.
"""
from __future__ import annotations

from tests.robustness.netguard import NetworkGuard, open_inet_sockets

GUARD = NetworkGuard().install()   # first: everything below runs guarded

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QSettings, QTimer  # noqa: E402

STEP_TIMEOUT_MS = 300_000
open_sockets: list[str] = []
steps: list[str] = []


def wait_until(predicate, timeout_ms: int = STEP_TIMEOUT_MS) -> bool:
    clock = QElapsedTimer()
    clock.start()
    while not predicate():
        if clock.elapsed() > timeout_ms:
            return False
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()
        open_sockets.extend(s for s in open_inet_sockets() if s not in open_sockets)
    return True


def gui_session(models_dir: Path, images: list[Path], work: Path) -> None:
    from cxrviewer.ui.shell.app import create_application
    from cxrviewer.ui.shell.main_window import MainWindow
    from cxrviewer.ui.shell.settings import ViewerSettings
    from cxrviewer.ui.workers.inference_service import InferenceService

    create_application(["cxrviewer"])
    settings = ViewerSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings)
    window.show()
    shown: list[object] = []
    window.image_changed.connect(shown.append)
    window.open_paths([str(p) for p in images])
    assert wait_until(lambda: any(image is not None for image in shown)), "no image was shown"
    steps.append(f"window showed {shown[-1].display_name}")
    ai = getattr(window, "ai", None)
    if ai is not None:
        predictions: list[object] = []
        ai.prediction_shown.connect(predictions.append)
        assert wait_until(lambda: ai.current_model() is not None or bool(ai.last_error())), "model never loaded"
        assert ai.current_model() is not None, ai.last_error()
        assert wait_until(lambda: bool(predictions)), "the AI panel showed no prediction"
        steps.append(f"AI panel: {ai.current_model().name} predicted {predictions[-1].top_label}")
    for _ in range(len(images) - 1):
        window.next_image()
        wait_until(lambda: False, 300)

    service = InferenceService(models_root=models_dir)
    cams: list[object] = []
    service.cam_ready.connect(cams.append)
    ready: list[object] = []
    service.model_ready.connect(ready.append)
    service.switch_model("")
    assert wait_until(lambda: bool(ready)), "InferenceService never loaded the model"
    image = next(image for image in shown if image is not None)
    service.request(image, class_index=0, method="gradcam")
    assert wait_until(lambda: bool(cams)), "InferenceService gave no heat map"
    steps.append(f"InferenceService: heat map {cams[-1].cam.shape}")
    service.shutdown()

    window.action("about").trigger()
    wait_until(lambda: False, 200)
    window.close()
    QCoreApplication.processEvents()
    steps.append("window closed")


def cli_session(images: list[Path], work: Path) -> None:
    from cxrviewer import cli

    status = cli.main(["render", str(images[0]), "-o", str(work / "render.png"), "--size", "256"])
    steps.append(f"cli render: exit {status}")
    assert status == 0
    if "selftest" in cli.subcommand_names():
        status = cli.main(["selftest"])
        steps.append(f"cli selftest: exit {status}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    error = ""
    with tempfile.TemporaryDirectory(prefix="cxrviewer-offline-") as folder:
        try:
            gui_session(args.models_dir, args.images, Path(folder))
            cli_session(args.images, Path(folder))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            import traceback

            error = "".join(traceback.format_exception(exc))
    open_sockets.extend(s for s in open_inet_sockets() if s not in open_sockets)
    args.out.write_text(json.dumps({
        "attempts": GUARD.attempts, "sockets": GUARD.sockets, "open_sockets": open_sockets,
        "steps": steps, "error": error,
        "tensorflow_imported": "tensorflow" in sys.modules,
    }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
