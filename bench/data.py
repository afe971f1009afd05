"""Inputs for the benchmarks: the real files in ../shared when present, else synthetic ones.

../shared (or $CXRVIEWER_SHARED) holds the DICOM samples and the chest X-ray JPEGs; without
it every benchmark still runs on synthetic images, and says so in its notes.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from cxrviewer.core.types import Window, XrayImage

ROOT = Path(__file__).resolve().parent.parent
SHARED_ENV = "CXRVIEWER_SHARED"
DICOM_NAME = "cr_chest_mono1_j2k_lossy.dcm"


def shared_dir() -> Path | None:
    override = os.environ.get(SHARED_ENV)
    folder = Path(override) if override else ROOT.parent / "shared"
    return folder if folder.is_dir() else None


def shared_dicom() -> Path | None:
    """The lossy JPEG 2000 MONOCHROME1 chest CR from ../shared/dicom, if present."""
    shared = shared_dir()
    path = shared / "dicom" / DICOM_NAME if shared else None
    return path if path is not None and path.is_file() else None


def synthetic_pixels(size: int, seed: int = 0) -> np.ndarray:
    """A smooth 'radiograph' (two blobs + noise) as uint16-range float32 (size × size)."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    pixels = 1000.0 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.5) ** 2) * 12.0)
    pixels += 600.0 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.4) ** 2) * 20.0)
    pixels += rng.normal(0.0, 40.0, (size, size)).astype(np.float32)
    return pixels.astype(np.float32)


def synthetic_xray(size: int, seed: int = 0) -> XrayImage:
    pixels = synthetic_pixels(size, seed)
    pixels.setflags(write=False)
    return XrayImage(
        path=Path(f"synthetic_{seed}_{size}.png"), display_name=f"synthetic {size} px", pixels=pixels,
        default_window=Window(center=600.0, width=1400.0), presets=(), photometric="MONOCHROME2",
        sha256=hashlib.sha256(pixels.tobytes()).hexdigest(),
    )


def write_synthetic_pngs(folder: Path, count: int, size: int, distinct: int = 4) -> list[Path]:
    """`count` 8-bit gray PNGs of size × size; `distinct` different images, copied round-robin."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    sources: list[Path] = []
    for seed in range(min(distinct, count)):
        pixels = synthetic_pixels(size, seed)
        gray = np.clip(pixels / 1400.0 * 255.0, 0, 255).astype(np.uint8)
        path = folder / f"image_{seed:04d}.png"
        if not cv2.imwrite(str(path), gray, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise OSError(f"could not write {path}")
        sources.append(path)
    paths = list(sources)
    for index in range(len(sources), count):
        path = folder / f"image_{index:04d}.png"
        shutil.copyfile(sources[index % len(sources)], path)
        paths.append(path)
    return paths


def real_radiographs(count: int) -> list[Path]:
    """The first `count` chest X-ray JPEGs of ../shared/data/chest_xray (natural order), or []."""
    shared = shared_dir()
    folder = shared / "data" / "chest_xray" if shared else None
    if folder is None or not folder.is_dir():
        return []
    from cxrviewer.core.io import find_images

    found = find_images([folder])
    return found[:count] if len(found) >= count else []


def link_folder(files: list[Path], folder: Path) -> Path:
    """A folder holding exactly `files` (symlinks where possible, else copies)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, source in enumerate(files):
        target = folder / f"{index:04d}_{source.name}"
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    return folder


def shared_radiograph() -> Path | None:
    """One real Guangzhou radiograph from ../shared (the AI session's image), or None."""
    found = real_radiographs(1)
    return found[0] if found else None
