"""Golden screenshots of the reading-room themes: the main window, the AI panel, the Read First panel
and the model card dialog, dark and light, at scale 1 and 2 (a fresh process per theme and scale:
QT_SCALE_FACTOR is read once at start). Re-approve with CXRVIEWER_APPROVE_GOLDENS=1 after an
intended change, and look at the PNGs in tests/gui/goldens/."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from cxrviewer.ui.shell.theme import DARK, LIGHT

from .image_compare import assert_matches_golden, qimage_to_rgb

REPO = Path(__file__).resolve().parents[2]
PARTS = ("main_window", "ai_panel", "read_first", "model_card")

SHOTS = r"""
import os, sys
from pathlib import Path
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
import cv2
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.resources import resource_path
from cxrviewer.ui.shell.app import create_application
from cxrviewer.ui.shell.main_window import MainWindow
from cxrviewer.ui.dialogs.model_card_view import ModelCardView
from cxrviewer.ui.shell.settings import ViewerSettings
theme, out, scratch = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
app = create_application(["x"], theme=theme)
settings = ViewerSettings(QSettings(str(scratch / "s.ini"), QSettings.Format.IniFormat))
settings.qsettings.setValue("ai/read_first", True)
window = MainWindow(settings=settings)
window.ai.disable_autostart()
window.resize(1200, 800)
window.show()
rows, cols = np.mgrid[0:256, 0:224]
film = (40 + 150 * np.exp(-((cols - 112) / 70.0) ** 2) + 30 * (rows / 256)).astype(np.uint8)
(scratch / "study").mkdir()
cv2.imwrite(str(scratch / "study" / "film.png"), film)
loop = QEventLoop()
window.image_changed.connect(lambda _image: QTimer.singleShot(1500, loop.quit))
QTimer.singleShot(30000, loop.quit)
window.open_paths([str(scratch / "study" / "film.png")])
loop.exec()
window.canvas.flush_render()
app.processEvents()
window.grab().save(str(out / "main_window.png"))
window.ai.panel.grab().save(str(out / "ai_panel.png"))
window.trainee.read_first_dock.grab().save(str(out / "read_first.png"))
view = ModelCardView()
view.set_card(ModelCard.read(resource_path("models", "pneumonia3")))
view.resize(640, 480)
view.show()
app.processEvents()
view.grab().save(str(out / "model_card.png"))
window.close()
print("ok")
"""


@pytest.mark.parametrize("scale", ["1", "2"])
@pytest.mark.parametrize("theme", [DARK, LIGHT])
def test_theme_goldens(theme, scale, tmp_path):
    out = tmp_path / "shots"
    out.mkdir()
    env = {**os.environ, "QT_SCALE_FACTOR": scale, "QT_QPA_PLATFORM": "offscreen",
           "CXRVIEWER_MODELS_DIR": "/nonexistent/cxrviewer-models"}
    done = subprocess.run([sys.executable, "-c", SHOTS, theme, str(out), str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
    for part in PARTS:
        rgb = qimage_to_rgb(QImage(str(out / f"{part}.png")))
        assert_matches_golden(f"theme_{theme}_x{scale}_{part}", rgb, mean_tol=3.0, max_fraction=0.01)
