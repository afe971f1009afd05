"""Golden-image comparison with tolerances (after pyqtgraph's tests/image_testing.py).

A render matches its golden PNG when the mean absolute difference is below `mean_tol` and
fewer than `max_fraction` of the pixels differ by more than `pixel_tol` in any channel —
tolerant of antialiasing and font-rasteriser differences, strict about real changes.

Set CXRVIEWER_APPROVE_GOLDENS=1 to (re)write the goldens from the current renders. On a
mismatch the actual image, the golden and an amplified difference image are written to
tests/gui/_output/ for inspection.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "goldens"
OUTPUT_DIR = Path(__file__).resolve().parent / "_output"
APPROVE_ENV = "CXRVIEWER_APPROVE_GOLDENS"


@dataclass(frozen=True)
class Comparison:
    ok: bool
    mean_diff: float
    fraction_over: float
    max_diff: int
    diff: np.ndarray          # per-pixel max abs difference over channels, uint8

    def describe(self, pixel_tol: int) -> str:
        return (
            f"mean abs diff {self.mean_diff:.3f}, {self.fraction_over * 100:.3f}% of pixels "
            f"differ by more than {pixel_tol}, max diff {self.max_diff}"
        )


def qimage_to_rgb(image: object) -> np.ndarray:
    """An (H, W, 3) uint8 RGB copy of a QImage or QPixmap."""
    from PySide6.QtGui import QImage, QPixmap

    if isinstance(image, QPixmap):
        image = image.toImage()
    assert isinstance(image, QImage)
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = converted.width(), converted.height()
    stride = converted.bytesPerLine()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def read_png(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")
    return path


def compare_images(
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    mean_tol: float = 2.0,
    pixel_tol: int = 40,
    max_fraction: float = 0.005,
) -> Comparison:
    if actual.shape != expected.shape:
        raise ValueError(f"image sizes differ: actual {actual.shape}, golden {expected.shape}")
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    if diff.ndim == 3:
        diff = diff.max(axis=2)
    diff = diff.astype(np.uint8)
    mean_diff = float(diff.mean())
    fraction = float((diff > pixel_tol).mean())
    ok = mean_diff < mean_tol and fraction < max_fraction
    return Comparison(ok, mean_diff, fraction, int(diff.max()), diff)


def assert_matches_golden(
    name: str,
    actual: np.ndarray,
    *,
    mean_tol: float = 2.0,
    pixel_tol: int = 40,
    max_fraction: float = 0.005,
) -> None:
    """Compare `actual` (RGB uint8) with goldens/<name>.png, or approve it."""
    golden = GOLDEN_DIR / f"{name}.png"
    if os.environ.get(APPROVE_ENV, "").strip() not in ("", "0"):
        write_png(golden, actual)
        return
    if not golden.is_file():
        written = write_png(OUTPUT_DIR / f"{name}.actual.png", actual)
        pytest.fail(f"no golden {golden}; the render is in {written}. Approve it with {APPROVE_ENV}=1")
    expected = read_png(golden)
    if expected.shape != actual.shape:
        written = write_png(OUTPUT_DIR / f"{name}.actual.png", actual)
        pytest.fail(f"{name}: size {actual.shape} differs from golden {expected.shape} (actual in {written})")
    result = compare_images(actual, expected, mean_tol=mean_tol, pixel_tol=pixel_tol, max_fraction=max_fraction)
    if not result.ok:
        write_png(OUTPUT_DIR / f"{name}.actual.png", actual)
        write_png(OUTPUT_DIR / f"{name}.golden.png", expected)
        amplified = np.clip(result.diff.astype(np.int32) * 4, 0, 255).astype(np.uint8)
        write_png(OUTPUT_DIR / f"{name}.diff.png", amplified)
        pytest.fail(
            f"{name} differs from its golden: {result.describe(pixel_tol)} "
            f"(allowed mean < {mean_tol}, fraction < {max_fraction * 100:.2f}%). "
            f"See {OUTPUT_DIR}/{name}.actual.png / .diff.png; re-approve with {APPROVE_ENV}=1"
        )
