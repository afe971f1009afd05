"""Memory: RSS growth of the viewer over opening N big images one after another (caches bounded)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.data import write_synthetic_pngs

DRIVER = Path(__file__).resolve().parent / "memory_driver.py"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class MemoryResult:
    images: int
    size: int
    rss_first_mb: float
    rss_last_mb: float

    @property
    def growth_mb(self) -> float:
        return self.rss_last_mb - self.rss_first_mb


def run(scratch: Path, count: int, size: int) -> MemoryResult:
    folder = scratch / "memory_images"
    write_synthetic_pngs(folder, count, size)
    empty_models = scratch / "no_models"
    empty_models.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(scratch / "config"),
        "CXRVIEWER_LOG_DIR": str(scratch / "logs"),
        "CXRVIEWER_MODELS_DIR": str(empty_models),   # the image path only: no model, no TensorFlow
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    })
    done = subprocess.run([sys.executable, str(DRIVER), str(folder), str(count)], env=env,
                          capture_output=True, text=True, timeout=1800, cwd=scratch)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"memory driver failed (status {done.returncode}): {done.stderr.strip()[-600:]}")
    report = json.loads(lines[-1])
    return MemoryResult(int(report["images"]), size, float(report["rss_first_mb"]), float(report["rss_last_mb"]))
