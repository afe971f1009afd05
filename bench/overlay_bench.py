"""Overlay figures: what a threshold, colour map or opacity change costs on a big radiograph.

The CAM is computed once; its upsampled uint8 index image is cached (the once-per-CAM step,
timed separately). A threshold or colour-map change then only re-colours through a 256-entry
table; the render/export path also blends over the gray image. The viewer's own path is
`CamOverlayItem` (cxrviewer/ui/viewer/overlay_item.py): re-colour at its capped overlay size and upload
a pixmap; opacity goes to `QGraphicsItem.setOpacity` and must re-colour nothing.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle

import numpy as np

from bench.timing import Timing, interleaved, measure

COLOURMAP_CYCLE = ("jet", "inferno")
THRESHOLD_CYCLE = (0.2, 0.35)


@dataclass(frozen=True)
class OverlayResult:
    size: int
    index_image: Timing
    timings: dict[str, Timing]
    opacity_recolours: int | None
    viewer_skip_reason: str


def _cam(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:6, 0:6]
    return (np.exp(-((yy - 2.5) ** 2 + (xx - 3.0) ** 2) / 4.0) + 0.1 * rng.random((6, 6))).astype(np.float32)


_APP: list[object] = []   # keeps the QApplication alive


def _viewer_item(cam: np.ndarray, size: int) -> tuple[Callable[[], object] | None, int | None, str]:
    """(one threshold-or-colour change of a CamOverlayItem over a size × size image,
    re-colourings caused by 21 opacity changes, reason when the viewer path is unavailable)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtWidgets import QApplication

        from cxrviewer.core.xai.overlay import cam_index_image
        from cxrviewer.ui.viewer.overlay_item import CamOverlayItem
        try:
            from cxrviewer.core.xai.overlay_style import overlay_shape
        except ImportError:
            from cxrviewer.ui.viewer.overlay_item import overlay_shape  # type: ignore[no-redef]

        if QApplication.instance() is None:
            _APP.append(QApplication([]))
        item = CamOverlayItem()
        item.set_colormap(COLOURMAP_CYCLE[0])
        item.set_threshold(THRESHOLD_CYCLE[0])
        item.set_index_image(cam_index_image(cam, overlay_shape((size, size))), (size, size), "bench")
        # one change per call, alternating threshold and colour map, each a real change
        changes = cycle([
            lambda: item.set_threshold(THRESHOLD_CYCLE[1]),
            lambda: item.set_colormap(COLOURMAP_CYCLE[1]),
            lambda: item.set_threshold(THRESHOLD_CYCLE[0]),
            lambda: item.set_colormap(COLOURMAP_CYCLE[0]),
        ])
        before = item.recolour_count
        for _ in range(4):
            next(changes)()
        if item.recolour_count - before != 4:
            return None, None, "CamOverlayItem did not re-colour once per change"
        before = item.recolour_count
        for opacity in np.linspace(0.0, 1.0, 21):
            item.setOpacity(float(opacity))
        opacity_recolours = int(item.recolour_count - before)
    except Exception as exc:  # noqa: BLE001 - the viewer's module may be missing or mid-change
        return None, None, f"the viewer's overlay item is not usable here ({type(exc).__name__}: {exc})"
    return (lambda: next(changes)()), opacity_recolours, ""


def run(size: int, runs: int) -> OverlayResult:
    from cxrviewer.core.xai.overlay import blend, cam_index_image, colorize, colormap_lut

    cam = _cam()
    index_image = measure(lambda: cam_index_image(cam, (size, size)), max(1, min(runs, 3)))
    index = cam_index_image(cam, (size, size))
    display = np.random.default_rng(1).integers(0, 256, (size, size), dtype=np.uint8)
    rgba = np.empty((size, size, 4), np.uint8)
    copy_target = np.empty_like(rgba)
    styles = cycle([(name, threshold) for name in COLOURMAP_CYCLE for threshold in THRESHOLD_CYCLE])

    def recolour() -> None:
        name, threshold = next(styles)   # every call is a real change
        colorize(index, colormap_lut(name), threshold, out=rgba)

    def reblend() -> None:
        recolour()
        blend(display, rgba, 0.45)

    functions: dict[str, Callable[[], object]] = {
        "recolour": recolour,
        "reblend": reblend,
        "memcpy": lambda: np.copyto(copy_target, rgba),
    }
    viewer_change, opacity_recolours, reason = _viewer_item(cam, size)
    if viewer_change is not None:
        functions["viewer_recolour"] = viewer_change
    timings = interleaved(functions, runs, warmup=2)
    return OverlayResult(size, index_image, timings, opacity_recolours, reason)
