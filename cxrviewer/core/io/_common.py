"""Helpers shared by the raster and DICOM readers: reading bytes, sniffing, size limits."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import ImageLoadError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "CXRVIEWER_MAX_PIXELS"

PRESET_AUTO = "Auto (percentile)"
PRESET_FULL = "Full range"
PRESET_VOI_LUT = "VOI LUT"
COLOUR_NOTE = "colour image shown in gray"

_RASTER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),   # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)


def read_file_bytes(path: Path) -> bytes:
    """Read the whole file, turning OS errors into trainee-readable ImageLoadErrors."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "this is a folder, not an image file") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied: the file cannot be read") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ImageLoadError(path, "the file name is too long for this file system") from None
        raise ImageLoadError(path, f"the file cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ImageLoadError(path, "empty file (0 bytes)")
    return data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def has_dicom_preamble(data: bytes) -> bool:
    """True when the 128-byte preamble is followed by the 'DICM' prefix."""
    return data[128:132] == b"DICM"


def raster_format(data: bytes) -> str | None:
    """The raster format named by the file's magic number, or None."""
    for magic, name in _RASTER_MAGIC:
        if data.startswith(magic):
            return name
    return None


def max_pixels_limit(override: int | None = None) -> int:
    """The pixel limit: the explicit override, else $CXRVIEWER_MAX_PIXELS, else the default."""
    if override is not None:
        return int(override)
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if raw:
        try:
            value = int(float(raw))
            if value > 0:
                return value
        except ValueError:
            pass
        log.warning("ignoring invalid %s=%r", MAX_PIXELS_ENV, raw)
    return DEFAULT_MAX_PIXELS


def check_pixel_limit(path: Path, rows: int, columns: int, frames: int, limit: int) -> None:
    """Refuse an image whose header promises more pixels than `limit`, before decoding it."""
    if rows <= 0 or columns <= 0:
        raise ImageLoadError(path, f"the image header gives an empty size ({rows} × {columns} pixels)")
    total = rows * columns * max(frames, 1)
    if total > limit:
        frames_text = f" × {frames if frames < 10**12 else _count_text(frames)} frames" if frames > 1 else ""
        raise ImageLoadError(
            path,
            f"image too large to open safely ({rows} × {columns} pixels{frames_text} = "
            f"{_pixels_text(total)}; the limit is {_pixels_text(limit)}, "
            f"set {MAX_PIXELS_ENV} to raise it)",
        )


def _pixels_text(count: int) -> str:
    if count < 1_000_000:
        return f"{count:,} pixels"
    return f"{_count_text(count, 1_000_000)} megapixels"


def _count_text(count: int, unit: int = 1) -> str:
    """`count / unit` rounded, with thousands separators; a header's absurd number as ~10^k."""
    value = (count + unit // 2) // unit
    if value < 10**12:
        return f"{value:,}"
    return f"~10^{len(str(value)) - 1}"


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601 weights) of an (..., 3) RGB array as float32.

    When all three channels are identical the first one is returned unchanged, so gray
    images stored as RGB keep their exact values.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.array_equal(r, g) and np.array_equal(g, b):
        return r.astype(np.float32)
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (rgb[..., :3].astype(np.float32) @ weights).astype(np.float32)


def is_colour(rgb: np.ndarray) -> bool:
    """True when an (..., 3) array has channels that differ anywhere."""
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def display_name(path: Path, frame: int, frame_count: int) -> str:
    """File name, plus "[2/5]" (1-based) for a frame of a multi-frame file."""
    if frame_count > 1:
        return f"{path.name} [{frame + 1}/{frame_count}]"
    return path.name


def check_frame(path: Path, frame: int, frame_count: int) -> None:
    """Refuse a frame index outside 0..frame_count-1."""
    if not 0 <= frame < frame_count:
        valid = "a single frame (number 0)" if frame_count == 1 else (
            f"{frame_count} frames (numbers 0–{frame_count - 1})"
        )
        raise ImageLoadError(path, f"frame {frame} is out of range: the file has {valid}")
