"""PNG / JPEG / TIFF / BMP reader: OpenCV first, Pillow for the variants OpenCV cannot read."""
from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from cxrviewer.core.errors import ImageLoadError, printable_name
from cxrviewer.core.imaging import full_range_window, percentile_window
from cxrviewer.core.io._common import (
    COLOUR_NOTE,
    PRESET_AUTO,
    PRESET_FULL,
    check_frame,
    check_pixel_limit,
    display_name,
    is_colour,
    raster_format,
    rgb_to_gray,
)
from cxrviewer.core.types import Window, WindowPreset, XrayImage, readonly

log = logging.getLogger(__name__)

EIGHT_BIT_WINDOW = Window(127.5, 255.0)

_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


def _quiet_opencv() -> None:
    """Our own errors explain a failed decode; OpenCV's stderr warnings would only be noise."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - very old OpenCV builds
        pass


_quiet_opencv()


# --------------------------------------------------------------------------- headers

def png_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from the PNG IHDR chunk."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(height), int(width)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from the first JPEG frame header (SOFn), walking the marker segments."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            return None
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _JPEG_SOF_MARKERS:
            if i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return (height, width) if height > 0 else None
        i += 2 + length
    return None


def bmp_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a BMP info header (OS/2 and Windows variants)."""
    if len(data) < 26:
        return None
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size == 12:
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(int(height)), abs(int(width))


_TIFF_VALUE_TYPES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}   # SHORT, LONG, LONG8


def tiff_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) from the first IFD of a TIFF or BigTIFF file, or None.

    Read here rather than by Pillow, which refuses to even report sizes past its own bomb
    limit (~179 megapixels), so the message could not give the real dimensions. A tag given
    twice counts with its larger value: libtiff (OpenCV) reads the first, Pillow the last,
    and a 64 × 64 duplicate must not hide a 24000 × 24000 image from the size limit.
    """
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    found: dict[int, int] = {}
    try:
        magic = struct.unpack(order + "H", data[2:4])[0]
        if magic == 42:
            offset = struct.unpack(order + "I", data[4:8])[0]
            count = struct.unpack(order + "H", data[offset:offset + 2])[0]
            start, entry_size, head, value_at = offset + 2, 12, "HHI", 8
        elif magic == 43:
            offset = struct.unpack(order + "Q", data[8:16])[0]
            count = struct.unpack(order + "Q", data[offset:offset + 8])[0]
            start, entry_size, head, value_at = offset + 8, 20, "HHQ", 12
        else:
            return None
        for index in range(min(count, 4096)):
            pos = start + index * entry_size
            tag, kind, number = struct.unpack(order + head, data[pos:pos + value_at])
            if tag in (256, 257) and kind in _TIFF_VALUE_TYPES and number >= 1:
                fmt, size = _TIFF_VALUE_TYPES[kind]
                value = struct.unpack(order + fmt, data[pos + value_at:pos + value_at + size])[0]
                found[tag] = max(value, found.get(tag, 0))
    except struct.error:
        return None
    if 256 in found and 257 in found:
        return int(found[257]), int(found[256])
    return None


def pillow_size(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) via Pillow's lazy open (reads the header only), or None.

    Pillow refuses sizes beyond twice its own bomb limit (~179 megapixels); such files are
    reported as too large whatever the configured limit.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        return (2**31, 2**31)
    except Exception:  # noqa: BLE001 - any failure just means "no header we can read"
        return None
    return int(height), int(width)


def header_size(data: bytes, fmt: str | None) -> tuple[int, int] | None:
    """(rows, columns) read from the header without decoding the pixels."""
    if fmt == "PNG":
        return png_size(data)
    if fmt == "JPEG":
        return jpeg_size(data) or pillow_size(data)
    if fmt == "BMP":
        return bmp_size(data)
    if fmt == "TIFF":
        return tiff_size(data) or pillow_size(data)
    return pillow_size(data)


# --------------------------------------------------------------------------- integrity

def png_problem(data: bytes) -> str | None:
    """Walk the PNG chunks; describe a truncation or checksum error, or return None."""
    pos = 8
    n = len(data)
    while True:
        if pos + 8 > n:
            return "truncated PNG file (it ends before the image data is complete)"
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length + 4
        if end > n:
            return "truncated PNG file (it ends before the image data is complete)"
        expected = struct.unpack(">I", data[end - 4:end])[0]
        if zlib.crc32(data[pos + 4:end - 4]) & 0xFFFFFFFF != expected:
            name = kind.decode("latin-1", "replace")
            return f"corrupt PNG file (checksum error in its {name} chunk)"
        if kind == b"IEND":
            return None
        pos = end


_PNG_KEPT_ANCILLARY = frozenset({b"tRNS", b"eXIf"})   # transparency, orientation
PNG_KEPT_ANCILLARY_BYTES = 2**20
PNG_NOTED_SKIP_BYTES = 2**20


def png_image_chunks(data: bytes) -> tuple[bytes, dict[str, int]]:
    """The PNG with only the chunks its pixels need (critical ones, tRNS, a small eXIf), and
    the bytes skipped per chunk type. Call after `png_problem` found the chunks intact.

    Text and other metadata chunks are never shown, but the decoders read them: libpng
    refuses a chunk over 8 MB and Pillow one that inflates past 1 MB, so a valid PNG with a
    50 MB zTXt comment was reported as "truncated or corrupt". Dropping them avoids both.
    """
    kept = [data[:8]]
    skipped: dict[str, int] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        critical = kind[:1].isupper()
        if critical or (kind in _PNG_KEPT_ANCILLARY and length <= PNG_KEPT_ANCILLARY_BYTES):
            kept.append(data[pos:end])
        else:
            name = kind.decode("latin-1", "replace")
            skipped[name] = skipped.get(name, 0) + length
        if kind == b"IEND":
            break
        pos = end
    return (data if not skipped else b"".join(kept)), skipped


def png_skip_notes(skipped: dict[str, int]) -> tuple[str, ...]:
    """A note when the skipped metadata was large enough to matter (a 50 MB text chunk)."""
    total = sum(skipped.values())
    if total < PNG_NOTED_SKIP_BYTES:
        return ()
    kinds = ", ".join(printable_name(kind) for kind, size in sorted(skipped.items(), key=lambda kv: -kv[1]))
    return (f"the PNG file's {total / 2**20:,.0f} MB of metadata ({kinds}) was skipped; "
            "the image does not need it",)


def jpeg_problem(data: bytes) -> str | None:
    """A JPEG whose last end-of-image marker precedes its last scan is truncated."""
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return "truncated JPEG file (it ends before the image data is complete)"
    return None


_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
INCOMPLETE_JPEG_NOTE = (
    "incomplete JPEG file: it ends before all of its image detail (probably cut short); "
    "shown at reduced detail from the part that is there"
)


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, body) of each marker segment from SOI to the first EOI, skipping scan data."""
    segments: list[tuple[int, bytes]] = []
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i = data.find(b"\xff", i)   # scan data: jump to the next marker candidate
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:   # stuffed byte, TEM, restart
            i += 2
            continue
        if marker == 0xD9:
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            break
        segments.append((marker, data[i + 4:i + 2 + length]))
        i += 2 + length
    return segments


def progressive_jpeg_coverage(data: bytes) -> str | None:
    """How much of a progressive JPEG's image its scans carry: "complete", "partial" (the
    scans stop before every coefficient of every component was sent to full precision) or
    "none" (a component has no scan at all); None for a JPEG that is not progressive.

    A progressive JPEG cut short and given a new end-of-image marker (FF D9) decodes without
    an error: libjpeg fills in what is missing and warns on stderr only, so the picture came
    out blurred with no word said. Its scan headers tell: each coefficient (0 = DC, 1–63 = AC)
    of each component must be reached by a scan whose last bit position (Al) is 0.
    """
    segments = jpeg_segments(data)
    frame = next((body for marker, body in segments if marker in _JPEG_SOF_MARKERS), None)
    if frame is None or not any(marker in _PROGRESSIVE_SOF for marker, _ in segments) or len(frame) < 6:
        return None
    components = {frame[6 + 3 * k] for k in range(frame[5]) if 6 + 3 * k < len(frame)}
    final: dict[int, set[int]] = {component: set() for component in components}
    scanned: set[int] = set()
    for marker, body in segments:
        count = body[0] if marker == 0xDA and body else 0
        if count == 0 or len(body) < 1 + 2 * count + 3:
            continue
        start, end, approximation = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count]
        for k in range(count):
            scanned.add(body[1 + 2 * k])
            if approximation & 0x0F == 0:   # Al = 0: these coefficients are now at full precision
                final.setdefault(body[1 + 2 * k], set()).update(range(start, min(end, 63) + 1))
    if not components <= scanned:
        return "none"
    return "partial" if any(len(final[component]) < 64 for component in components) else "complete"


def jpeg_coverage_notes(path: Path, data: bytes) -> tuple[str, ...]:
    """Refuse a progressive JPEG with no scan for some colour component; note one whose scans
    stop early (it is shown, blurred, as browsers show a partly loaded image)."""
    coverage = progressive_jpeg_coverage(data)
    if coverage == "none":
        raise ImageLoadError(path, "truncated JPEG file (it ends before the image data is complete)")
    return (INCOMPLETE_JPEG_NOTE,) if coverage == "partial" else ()


# --------------------------------------------------------------------------- decoding

def decode_with_opencv(data: bytes) -> np.ndarray | None:
    """Decode with OpenCV (IMREAD_UNCHANGED keeps 16-bit and float); channels in RGB(A) order."""
    try:
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        log.info("OpenCV could not decode: %s", exc)
        return None
    if arr is None:
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    return arr


def decode_with_pillow(data: bytes) -> np.ndarray:
    """Decode with Pillow (TIFF variants OpenCV cannot read); channels in RGB(A) order."""
    from PIL import Image

    # Not warnings.catch_warnings(): it is not thread-safe, and images load in a worker thread.
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        mode = img.mode
        if mode == "1":
            return np.asarray(img, dtype=np.uint8) * np.uint8(255)
        if mode.startswith("I;16"):
            return np.asarray(img).astype(np.uint16)
        if mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
            return np.asarray(img)
        has_alpha = "A" in mode or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))


_ORIENTATION_NOTES = {
    2: "mirrored left to right", 3: "turned 180°", 4: "mirrored top to bottom",
    5: "mirrored along its diagonal", 6: "turned 90° clockwise", 7: "mirrored along its other diagonal",
    8: "turned 90° anticlockwise",
}


def exif_orientation(data: bytes, fmt: str | None) -> int:
    """The EXIF Orientation tag (1–8; 1 = as stored) of a JPEG, TIFF or PNG, read by Pillow
    from the header only; 1 when absent or unreadable."""
    if fmt not in ("JPEG", "TIFF", "PNG"):
        return 1
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block just means "as stored"
        return 1
    return value if value in _ORIENTATION_NOTES else 1


def apply_orientation(arr: np.ndarray, orientation: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn a decoded image upright as its EXIF Orientation says (as Pillow's exif_transpose).

    OpenCV's IMREAD_UNCHANGED ignores the tag, so a phone photo of a film was shown, and fed
    to the model, sideways; the note says what was done, since the file's pixels differ.
    """
    if orientation not in _ORIENTATION_NOTES:
        return arr, ()
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    upright = np.ascontiguousarray(transforms[orientation](arr))
    note = f"shown upright: {_ORIENTATION_NOTES[orientation]} as the file's EXIF orientation ({orientation}) says"
    return upright, (note,)


def composite_over_black(values: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Weight `values` by opacity; a fully opaque alpha channel changes nothing."""
    if np.issubdtype(alpha.dtype, np.integer):
        opaque = float(np.iinfo(alpha.dtype).max)
    else:
        opaque = 1.0
    if np.all(alpha >= opaque):
        return values, ()
    weight = np.clip(alpha.astype(np.float32) / np.float32(opaque), 0.0, 1.0)
    return values.astype(np.float32) * weight, ("transparent areas are shown as black",)


def to_gray(arr: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Any decoded raster (gray, gray+alpha, RGB, RGBA) → 2-D float32 gray, plus notes."""
    notes: tuple[str, ...] = ()
    if arr.ndim == 2:
        return arr.astype(np.float32), notes
    channels = arr.shape[2]
    if channels == 1:
        return arr[..., 0].astype(np.float32), notes
    if channels == 2:
        gray, alpha = arr[..., 0], arr[..., 1]
        composited, notes = composite_over_black(gray, alpha)
        return np.asarray(composited, dtype=np.float32), notes
    rgb = arr[..., :3]
    if is_colour(rgb):
        notes += (COLOUR_NOTE,)
    gray = rgb_to_gray(rgb)
    if channels >= 4:
        gray, alpha_notes = composite_over_black(gray, arr[..., 3])
        notes += alpha_notes
    return np.asarray(gray, dtype=np.float32), notes


def replace_non_finite(pixels: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Replace NaN/±Inf by the smallest finite value (0 if there is none) and say so."""
    bad = ~np.isfinite(pixels)
    count = int(bad.sum())
    if count == 0:
        return pixels, ()
    finite = pixels[~bad]
    fill = float(finite.min()) if finite.size else 0.0
    fixed = pixels.copy()
    fixed[bad] = fill
    return fixed, (f"{count} pixel(s) were not finite numbers (NaN/Inf) and are shown as the minimum value",)


def raster_windows(pixels: np.ndarray, source_dtype: np.dtype) -> tuple[Window, tuple[WindowPreset, ...]]:
    """8-bit: the full 0–255 range is the default; anything deeper gets a percentile auto-window."""
    auto = percentile_window(pixels)
    if source_dtype == np.uint8 or source_dtype == np.bool_:
        full = EIGHT_BIT_WINDOW
        default = full
    else:
        full = full_range_window(pixels)
        default = auto
    presets = (WindowPreset(PRESET_AUTO, auto), WindowPreset(PRESET_FULL, full))
    return default, presets


# --------------------------------------------------------------------------- entry point

def load_raster(path: Path, data: bytes, sha256: str, frame: int, max_pixels: int) -> XrayImage:
    """Decode a raster file already read into `data` (size-checked before decoding)."""
    check_frame(path, frame, 1)
    fmt = raster_format(data)
    size = header_size(data, fmt)
    if size is None:
        if fmt in ("PNG", "JPEG", "BMP"):
            raise ImageLoadError(path, f"corrupt {fmt} file (its header cannot be read)")
        if fmt is None:
            raise ImageLoadError(path, "not an image or DICOM file (unrecognised content)")
    else:
        check_pixel_limit(path, size[0], size[1], 1, max_pixels)

    problem = png_problem(data) if fmt == "PNG" else jpeg_problem(data) if fmt == "JPEG" else None
    if problem:
        raise ImageLoadError(path, problem)
    notes = jpeg_coverage_notes(path, data) if fmt == "JPEG" else ()
    if fmt == "PNG":
        data, skipped = png_image_chunks(data)
        notes += png_skip_notes(skipped)

    arr = decode_with_opencv(data)
    if arr is None:
        try:
            arr = decode_with_pillow(data)
        except Exception as exc:  # noqa: BLE001 - every decoder failure becomes one message
            log.info("Pillow could not decode %s", path, exc_info=True)
            kind = fmt or "image"
            raise ImageLoadError(path, f"truncated or corrupt {kind} file (its image data cannot be decoded)") from exc
    if arr.size == 0:
        raise ImageLoadError(path, "the image has no pixels")
    if size is None:  # no readable header (rare TIFF variants): enforce the limit after all
        check_pixel_limit(path, arr.shape[0], arr.shape[1], 1, max_pixels)
    arr, orientation_notes = apply_orientation(arr, exif_orientation(data, fmt))
    return build_raster_image(path, arr, sha256, fmt or "image", notes + orientation_notes)


def build_raster_image(
    path: Path, arr: np.ndarray, sha256: str, fmt: str, notes: tuple[str, ...] = ()
) -> XrayImage:
    """Turn a decoded array (RGB(A) order) into an XrayImage with its windows and notes."""
    source_dtype = arr.dtype
    pixels, gray_notes = to_gray(arr)
    notes = notes + gray_notes
    pixels, finite_notes = replace_non_finite(pixels)
    notes += finite_notes
    default, presets = raster_windows(pixels, source_dtype)
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    metadata = {
        "Format": fmt,
        "Rows": str(pixels.shape[0]),
        "Columns": str(pixels.shape[1]),
        "SampleType": str(source_dtype),
        "Channels": str(channels),
    }
    return XrayImage(
        path=path,
        display_name=display_name(path, 0, 1),
        pixels=readonly(np.ascontiguousarray(pixels, dtype=np.float32)),
        default_window=default,
        presets=presets,
        photometric="MONOCHROME2",
        metadata=metadata,
        notes=notes,
        sha256=sha256,
    )
