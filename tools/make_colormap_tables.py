"""Write resources/colormaps/colormaps.npz: the overlay's 256-entry RGB tables, from matplotlib.

The viewer reads these tables instead of importing matplotlib when it first draws an overlay
or a colour bar (a ~0.5 s import on the GUI thread, and imports racing the inference thread's
TensorFlow import). Run again after adding a name to cxrviewer.core.xai.overlay.COLORMAPS;
tests/unit/test_overlay_tables.py checks the file against matplotlib.

    .venv/bin/python tools/make_colormap_tables.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxrviewer.core.xai.overlay import COLORMAP_TABLES, COLORMAPS, matplotlib_lut  # noqa: E402


def main() -> None:
    target = ROOT / "resources" / COLORMAP_TABLES
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **{name: matplotlib_lut(name) for name in COLORMAPS})
    print(f"wrote {target.relative_to(ROOT)}: {', '.join(COLORMAPS)}")


if __name__ == "__main__":
    main()
