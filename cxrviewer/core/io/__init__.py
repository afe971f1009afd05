"""Image loading: one entry point, `load_image(path) -> XrayImage`, for DICOM and raster files.

The file's content decides the reader (DICOM preamble, raster magic number, or a DICOM
dataset without a preamble), not its name. Every failure is an `ImageLoadError` whose message
names the file and says what is wrong in words a trainee can act on.
"""
from __future__ import annotations

import logging
import operator
import os
import re
from collections.abc import Iterable
from pathlib import Path

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io._common import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    PRESET_AUTO,
    PRESET_FULL,
    PRESET_VOI_LUT,
    check_pixel_limit,
    has_dicom_preamble,
    max_file_bytes,
    max_pixels_limit,
    open_regular,
    raster_format,
    read_file_bytes,
    regular_file_stat,
    sha256_hex,
)
from cxrviewer.core.io._guards import check_deflated_size, check_item_count, inflated_size_limit, is_plugin_panic
from cxrviewer.core.io.dicom import check_header_size, dicom_tag_rows, load_dicom, read_header, sniff_dicom
from cxrviewer.core.io.raster import header_size, load_raster
from cxrviewer.core.types import XrayImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "PRESET_AUTO",
    "PRESET_FULL",
    "PRESET_VOI_LUT",
    "SUPPORTED_SUFFIXES",
    "dicom_tag_rows",
    "estimated_load_bytes",
    "find_images",
    "header_problem",
    "is_supported_path",
    "load_image",
    "natural_sort_key",
    "read_header",
]

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp"}
)
_SKIPPED_NAMES = frozenset({"DICOMDIR", "Thumbs.db"})
HEADER_FIRST_BYTES = 16 * 2**20   # larger DICOM files are size-checked from their header first
PEAK_BYTES_PER_PIXEL = 20         # decoded samples + float32 gray + copies (100 MP measured 1.7 GB)


def load_image(path: str | os.PathLike[str], frame: int = 0, *, max_pixels: int | None = None) -> XrayImage:
    """Load one frame (0-based) of a DICOM, PNG, JPEG, TIFF or BMP file.

    Images with more than `max_pixels` pixels (default $CXRVIEWER_MAX_PIXELS or 100 million,
    counting all frames of a DICOM) are refused from their header, before decoding.
    Raises ImageLoadError, and only ImageLoadError, on any failure.
    """
    path = Path(path)
    try:
        return _load(path, frame, max_pixels)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(path, "not enough memory to open this image") from None
    except BaseException as exc:  # noqa: BLE001 - the one place that turns surprises into user errors
        if not (isinstance(exc, Exception) or is_plugin_panic(exc)):
            raise   # KeyboardInterrupt, SystemExit
        log.exception("unexpected error while loading %s", path)
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        reason = f"unexpected error while reading the file ({type(exc).__name__}{': ' + detail if detail else ''})"
        raise ImageLoadError(path, reason) from exc


def _load(path: Path, frame: int, max_pixels: int | None) -> XrayImage:
    try:
        frame = operator.index(frame)  # accepts numpy integers too
    except TypeError:
        raise ImageLoadError(path, f"frame must be a whole number, not {frame!r}") from None
    limit = max_pixels_limit(max_pixels)
    file_limit = max_file_bytes(limit)
    if regular_file_stat(path, file_limit).st_size > HEADER_FIRST_BYTES:
        check_header_size(path, limit)
    data = read_file_bytes(path, file_limit)
    check_deflated_size(path, data, inflated_size_limit(limit))
    if raster_format(data) is None:
        check_item_count(path, data)
    digest = sha256_hex(data)
    if has_dicom_preamble(data):
        return load_dicom(path, data, digest, frame, limit)
    if raster_format(data) is None:
        dataset = sniff_dicom(data, path)
        if dataset is not None:
            return load_dicom(path, data, digest, frame, limit, ds=dataset)
    return load_raster(path, data, digest, frame, limit)


def estimated_load_bytes(path: str | os.PathLike[str]) -> int:
    """The peak memory `load_image(path)` is expected to need, from the file size and the
    header's image size (one frame); 0 for a file that will be refused at once. Never raises.

    Used to budget concurrent loads (`core.memory.MemoryBudget`), so it reads headers only.
    """
    path = Path(path)
    try:
        size = regular_file_stat(path, max_file_bytes()).st_size
    except ImageLoadError:
        return 0
    pixels = 0
    try:
        with open_regular(path) as handle:
            head = handle.read(2**20)
        fmt = raster_format(head)
        if fmt is not None and not has_dicom_preamble(head):
            dims = header_size(head, fmt)
            pixels = dims[0] * dims[1] if dims else 0
        else:
            ds = read_header(path)
            pixels = int(ds.Rows) * int(ds.Columns) * max(int(ds.get("SamplesPerPixel", 1) or 1), 1)
    except Exception:  # noqa: BLE001 - an unreadable header: the load itself will say why
        log.debug("no size estimate for %s", path, exc_info=True)
    return 2 * size + PEAK_BYTES_PER_PIXEL * pixels


SCAN_HEAD_BYTES = 64 * 2**10   # enough for every raster header and a DICOM preamble
SCAN_FULL_LOAD_BYTES = 4 * 2**20   # unrecognised content up to this size is tried as load_image would
SCAN_TIFF_BYTES = 64 * 2**20       # a TIFF whose first IFD is not in the head is read up to this size


def header_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `load_image(path)` will fail, from the file system and the header alone; None when
    nothing is wrong so far (decoding may still fail). Never decodes pixel data, never raises.

    For the folder scan: unreadable files, FIFOs, devices, symbolic link loops, files over the
    size cap, images whose header is over the pixel limit, DICOM headers that cannot be parsed
    (or hold an item bomb) and content that is no image at all are listed in Problems as soon
    as a folder is opened, each with the message opening it would give.
    """
    path = Path(path)
    try:
        _check_header(path)
    except ImageLoadError as exc:
        return str(exc)
    except MemoryError:
        return str(ImageLoadError(path, "not enough memory to open this image"))
    except Exception:  # noqa: BLE001 - an odd header is left to the decode, which explains it
        log.debug("header check of %s failed", path, exc_info=True)
    return None


def _check_header(path: Path) -> None:
    limit = max_pixels_limit()
    file_limit = max_file_bytes(limit)
    size = regular_file_stat(path, file_limit).st_size
    with open_regular(path, file_limit) as handle:
        head = handle.read(SCAN_HEAD_BYTES)
    whole = len(head) >= size
    fmt = raster_format(head)
    if fmt is not None and not has_dicom_preamble(head):
        dims = header_size(head, fmt)
        if dims is None and fmt == "TIFF" and not whole and size <= SCAN_TIFF_BYTES:
            head, whole = read_file_bytes(path, file_limit), True   # its first IFD may sit at the end
            dims = header_size(head, fmt)
        if dims is not None:
            check_pixel_limit(path, dims[0], dims[1], 1, limit)
        elif whole and fmt in ("PNG", "JPEG", "BMP"):
            raise ImageLoadError(path, f"corrupt {fmt} file (its header cannot be read)")
        return
    if has_dicom_preamble(head):
        ds = read_header(path)   # corrupt headers and item bombs raise here
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = ds.get("NumberOfFrames", 1)
        try:
            frames = max(int(frames), 1)
        except (TypeError, ValueError):
            frames = 1
        check_pixel_limit(path, rows, columns, frames, limit)
        return
    if size <= SCAN_FULL_LOAD_BYTES:   # no magic, no preamble: as load_image would see it
        data = read_file_bytes(path, file_limit)
        check_deflated_size(path, data, inflated_size_limit(limit))
        check_item_count(path, data)
        if sniff_dicom(data, path) is None:
            raise ImageLoadError(path, "not an image or DICOM file (unrecognised content)")


def is_supported_path(path: str | os.PathLike[str]) -> bool:
    """True for a file the viewer should offer to open.

    Decided by the suffix; a file without a suffix or with a numeric one (DICOM files are
    often named by UID, "1.2.840….1") counts when it starts with a DICOM preamble.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return True
    if suffix == "" or suffix[1:].isdigit():
        return _has_preamble_on_disk(path)
    return False


def _has_preamble_on_disk(path: Path) -> bool:
    try:
        with open_regular(path) as handle:
            return has_dicom_preamble(handle.read(132))
    except (OSError, ImageLoadError):
        return False


def natural_sort_key(path: str | os.PathLike[str]) -> tuple[object, ...]:
    """Sort key that puts "IM-2" before "IM-10" (case-insensitive)."""
    parts = re.split(r"(\d+)", Path(path).name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def find_images(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders (recursively) into the supported image files they contain.

    Files named explicitly are kept as given, even unsupported ones, so that opening them
    reports why they cannot be shown. Hidden files and folders and DICOMDIR are skipped;
    the order is stable (natural sort within each folder), duplicates are dropped.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        candidates = _walk_folder(path) if path.is_dir() else [path]
        for candidate in candidates:
            key = candidate.resolve() if candidate.exists() else candidate.absolute()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _walk_folder(folder: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=natural_sort_key)
        for name in sorted(names, key=natural_sort_key):
            if name.startswith(".") or name in _SKIPPED_NAMES:
                continue
            candidate = Path(root) / name
            if is_supported_path(candidate):
                files.append(candidate)
    return files
