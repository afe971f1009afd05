"""Helpers shared by the raster and DICOM readers: reading bytes, sniffing, size limits."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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


def max_file_bytes(max_pixels: int | None = None) -> int:
    """Largest file read into memory: 8 bytes for each allowed pixel plus 64 MB of header room.

    Checked from the file system before a single byte is read, so a sparse 3.5 GB file (or
    one that keeps growing) never reaches memory; $CXRVIEWER_MAX_PIXELS raises both limits.
    """
    return 64 * 2**20 + 8 * max_pixels_limit(max_pixels)


def _os_error(path: Path, exc: OSError) -> ImageLoadError:
    """An OS error while looking at or reading `path`, in a trainee's words."""
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return ImageLoadError(path, "file not found: it is a link to a file that does not exist")
        return ImageLoadError(path, "file not found")
    if isinstance(exc, IsADirectoryError):
        return ImageLoadError(path, "this is a folder, not an image file")
    if isinstance(exc, PermissionError):
        return ImageLoadError(path, "permission denied: the file cannot be read")
    if exc.errno == errno.ELOOP:
        return ImageLoadError(path, "the link cannot be followed: it leads back to itself (a symbolic link loop)")
    if exc.errno == errno.ENAMETOOLONG:
        return ImageLoadError(path, "the file name is too long for this file system")
    if exc.errno == errno.ENOTDIR:
        return ImageLoadError(path, "file not found (a part of its path is not a folder)")
    return ImageLoadError(path, f"the file cannot be read ({exc.strerror or exc})")


def _not_regular(path: Path, mode: int) -> ImageLoadError | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return ImageLoadError(path, "this is a folder, not an image file")
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a network socket"
    else:
        kind = "a special file"
    return ImageLoadError(path, f"this is {kind}, not an image file; only ordinary files are opened")


def regular_file_stat(path: Path, max_bytes: int | None = None) -> os.stat_result:
    """`os.stat(path)` (links followed) for an ordinary, non-empty file of at most `max_bytes`.

    Nothing is opened: a named pipe would block the reader forever and a device such as
    /dev/zero never ends, so both are refused from their file type alone.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc) from None
    problem = _not_regular(path, info.st_mode)
    if problem is not None:
        raise problem
    if info.st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")
    limit = max_file_bytes() if max_bytes is None else max_bytes
    if info.st_size > limit:
        raise file_too_large(path, info.st_size, limit)
    return info


def file_too_large(path: Path, size: int, limit: int) -> ImageLoadError:
    return ImageLoadError(
        path,
        f"file too large to open safely ({_bytes_text(size)}; the limit is {_bytes_text(limit)}, "
        f"set {MAX_PIXELS_ENV} to raise it)",
    )


def _bytes_text(size: int) -> str:
    if size >= 2**30:
        return f"{size / 2**30:.1f} GB"
    if size >= 2**20:
        return f"{size / 2**20:,.0f} MB"
    return f"{size:,} bytes"


@contextlib.contextmanager
def open_regular(path: Path, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """Open an ordinary file for reading (see `regular_file_stat`); ImageLoadError otherwise.

    The file is opened non-blocking and checked again through its descriptor, so a pipe
    swapped in between the two looks is refused rather than waited on.
    """
    regular_file_stat(path, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        problem = _not_regular(path, os.fstat(fd).st_mode)
        if problem is not None:
            raise problem
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_file_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """Read a whole ordinary file of at most `max_bytes` (see `max_file_bytes`), never more.

    OS errors, special files and oversized files become trainee-readable ImageLoadErrors.
    """
    limit = max_file_bytes() if max_bytes is None else max_bytes
    with open_regular(path, limit) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise _os_error(path, exc) from None
    if len(data) > limit:   # it grew after it was measured
        raise file_too_large(path, len(data), limit)
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
