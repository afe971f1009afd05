"""Guards that keep hostile DICOM input away from code that would abort, hang or exhaust memory.

Each was found by fuzzing the loader (tests/robustness/test_fuzz_loader.py):

* python-gdcm (3.0 to 3.2 at least) takes the whole process down on some malformed JPEG and
  JPEG-LS streams: a libjpeg warning while it reads the JPEG header (stray bytes between
  markers, an unknown JFIF version, a header cut short) reaches an `assert(0)` in
  gdcmJPEGBITSCodec, which GDCM turns into a C++ exception its Python binding does not catch
  — std::terminate, SIGABRT. So GDCM is used only for transfer syntaxes no other installed
  plugin decodes (JPEG Lossless), and only after `jpeg_header_problem` found the stream's
  header clean. Everything else goes to pylibjpeg-openjpeg, pyjpegls, Pillow or pydicom's
  own decoders, which report broken streams as ordinary Python exceptions.
* CharLS (pyjpegls 1.5) spends tens of seconds on a JPEG-LS stream cut short before its
  end-of-image marker, even a 16 × 20 pixel one. Such a stream is truncated by definition,
  so it is refused before decoding.
* pylibjpeg-rle (Rust) panics on some corrupt RLE segments; pyo3 raises its PanicException,
  a BaseException that `except Exception` does not catch. `is_plugin_panic` recognises it.
* A bit flipped in a JPEG 2000 size marker (SIZ) made a 1760 × 1760 frame claim 3.7
  gigapixels; openjpeg then spent 50 s and gigabytes before pydicom noticed the mismatch.
  `stream_problem` compares the size a frame's codestream declares (J2K SIZ, JPEG SOFn,
  JPEG-LS SOF55) with the DICOM header's Rows × Columns before any plugin decodes it.
* pydicom inflates a Deflated Explicit VR Little Endian dataset in one `zlib.decompress`
  call: a 1 MB file can ask for gigabytes. `check_deflated_size` counts the inflated size
  in 1 MB steps first and refuses more than the limit; it also counts sequence items, since a
  63 kB file inflating to 5 million empty items costs gigabytes once pydicom parses them.
* pydicom's RLE decoder expands a whole segment before comparing it with the frame size;
  `rle_problem` counts each segment's output first (issue #14).
* pydicom's JP2 box walk (`get_j2k_parameters`) never ends on a box of length 0;
  `j2k_codestream` walks the boxes first (issue #14).
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.filereader import _read_file_meta_info, read_preamble

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io._common import MAX_PIXELS_ENV

DEFLATED_UID = b"1.2.840.10008.1.2.1.99"
INFLATE_STEP = 1 << 20
ITEM_TAG = b"\xfe\xff\x00\xe0"     # (FFFE,E000) little endian: one sequence item or fragment
MAX_ITEMS = 100_000
LOOK_AHEAD_AFTER_ITEMS = 1_000       # an ordinary header has far fewer sequence items
LOOK_AHEAD_BYTES = 16 * 2**20
GDCM = "gdcm"
PYJPEGLS = "pyjpegls"

# JPEG (ISO 10918) syntaxes: GDCM decodes them with its libjpeg-based codec.
JPEG_FAMILY = frozenset({
    "1.2.840.10008.1.2.4.50",   # Baseline
    "1.2.840.10008.1.2.4.51",   # Extended
    "1.2.840.10008.1.2.4.57",   # Lossless
    "1.2.840.10008.1.2.4.70",   # Lossless SV1
})

JPEG_LS_FAMILY = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
J2K_FAMILY = frozenset({
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",
})
_JPEG_LS_SOF = 0xF7
RLE_UID = "1.2.840.10008.1.2.5"
RLE_MAX_SEGMENTS = 15
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"

# Frame headers (SOFn); libjpeg itself refuses the hierarchical and arithmetic ones.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS = 0xDA
_GDCM_PHOTOMETRICS = frozenset({"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422"})


def is_plugin_panic(exc: BaseException) -> bool:
    """A Rust plugin's panic (pyo3_runtime.PanicException derives from BaseException)."""
    return type(exc).__name__ == "PanicException"


def plugin_order(available: list[str]) -> list[str]:
    """The plugins to try, in order: every available plugin but GDCM, else GDCM alone."""
    safe = [name for name in available if name != GDCM]
    if safe:
        return safe
    return [GDCM] if GDCM in available else []


def stream_problem(ds: Dataset, uid: str, plugin: str, frame: int, frame_count: int) -> str | None:
    """Why handing this frame to `plugin` could abort the process, take very long or exhaust
    memory, or None."""
    if uid not in JPEG_FAMILY | JPEG_LS_FAMILY | J2K_FAMILY | {RLE_UID}:
        return None
    stream = _frame_stream(ds, frame, frame_count)
    if stream is None:
        return "its fragments cannot be read"
    if uid == RLE_UID:
        return rle_problem(stream, int(ds.Rows) * int(ds.Columns))
    if uid in J2K_FAMILY:
        stream, problem = j2k_codestream(stream)
        if problem:
            return problem
    declared = codestream_size(stream, uid)
    if declared is not None and declared != (int(ds.Rows), int(ds.Columns)) and declared[0] != 0:
        kind = "JPEG 2000" if uid in J2K_FAMILY else "JPEG-LS" if uid in JPEG_LS_FAMILY else "JPEG"
        return (f"the {kind} stream says it is {declared[0]} × {declared[1]} pixels but the DICOM header "
                f"says {ds.Rows} × {ds.Columns}")
    if plugin == GDCM and uid in JPEG_FAMILY:
        return _gdcm_jpeg_problem(ds, stream)
    if plugin == PYJPEGLS and uid in JPEG_LS_FAMILY:
        if not stream.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "the JPEG-LS stream is truncated (its end-of-image marker is missing)"
    return None


def codestream_size(stream: bytes, uid: str) -> tuple[int, int] | None:
    """(rows, columns) a frame's codestream declares, or None when its header cannot be read."""
    if uid in J2K_FAMILY:
        at = 0 if stream.startswith(_J2K_SOC_SIZ) else stream.find(_J2K_SOC_SIZ)   # anywhere, not the first 4 kB
        if at < 0 or at + 24 > len(stream):
            return None
        width, height, x_offset, y_offset = struct.unpack(">IIII", stream[at + 8:at + 24])
        return max(height - y_offset, 0), max(width - x_offset, 0)
    if stream[:2] != b"\xff\xd8":
        return None
    pos, n = 2, len(stream)
    while pos + 4 <= n:
        if stream[pos] != 0xFF:
            return None
        marker = stream[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, _SOS):
            return None
        if marker in _SOF_MARKERS or marker == _JPEG_LS_SOF:
            if pos + 9 > n:
                return None
            return int.from_bytes(stream[pos + 5:pos + 7], "big"), int.from_bytes(stream[pos + 7:pos + 9], "big")
        pos += 2 + int.from_bytes(stream[pos + 2:pos + 4], "big")
    return None


def j2k_codestream(stream: bytes) -> tuple[bytes, str | None]:
    """The JPEG 2000 codestream inside a JP2 file wrapper (the stream itself when unwrapped),
    or a problem that makes the stream unsafe to hand to pydicom.

    pydicom 3.0.2 (`get_j2k_parameters`) walks the wrapper's boxes with `offset += length`
    before any plugin decodes: a box of length 0 ("up to the end of the file" in the JP2
    specification) before the codestream box never moves the offset, so it loops forever; an
    extended length (1) or a length under 8 leaves it walking garbage. The same walk is done
    here first, and refused where pydicom's would not end at the codestream box.
    """
    if not stream.startswith(_JP2_SIGNATURE[:8]):   # the prefix pydicom recognises
        return stream, None
    offset, end = len(_JP2_SIGNATURE), len(stream)
    while offset + 8 <= end:
        length = int.from_bytes(stream[offset:offset + 4], "big")
        kind = stream[offset + 4:offset + 8]
        if kind == b"jp2c":
            if length == 1:
                return stream[offset + 16:], None
            return stream[offset + 8:offset + length if length >= 8 else end], None
        if length == 0:
            return stream, ("the JPEG 2000 file wrapper is corrupt: a box before the image data claims "
                            "to run to the end of the file, so the image data cannot be found")
        if length < 8:
            return stream, f"the JPEG 2000 file wrapper is corrupt: a box has an impossible length ({length} bytes)"
        offset += length
    return stream, "the JPEG 2000 file wrapper contains no image data (no codestream box)"


def rle_problem(stream: bytes, segment_bytes: int) -> str | None:
    """Why an RLE frame would expand beyond its size, or None.

    pydicom's own RLE decoder expands each segment completely before it compares the result
    with Rows × Columns, and PackBits turns 2 bytes into 128: a 56 MB segment asked for
    3.6 GB. Here the header's segment count is checked and each segment's output length is
    counted, stopping as soon as it passes twice the frame size (pydicom trims padding).
    """
    if len(stream) < 64:
        return "the RLE header is cut short"
    count = struct.unpack("<I", stream[:4])[0]
    if not 1 <= count <= RLE_MAX_SEGMENTS:
        return f"the RLE header gives {count:,} segments (1 to {RLE_MAX_SEGMENTS} are possible)"
    offsets = list(struct.unpack(f"<{count}I", stream[4:4 + 4 * count])) + [len(stream)]
    limit = 2 * segment_bytes + 4096
    for index in range(count):
        segment = stream[offsets[index]:offsets[index + 1]]
        if 64 * len(segment) > limit and packbits_length(segment, limit) > limit:
            return (f"an RLE segment expands to more than twice the image size "
                    f"({segment_bytes:,} bytes expected; a decompression bomb?)")
    return None


def packbits_length(segment: bytes, stop_after: int) -> int:
    """Bytes the PackBits `segment` decodes to, counted up to just past `stop_after`."""
    total, pos, end = 0, 0, len(segment)
    while pos < end and total <= stop_after:
        header = segment[pos]
        if header > 128:
            total += 257 - header
            pos += 2
        elif header < 128:
            total += header + 1
            pos += header + 2
        else:
            pos += 1
    return total


def _frame_stream(ds: Dataset, frame: int, frame_count: int) -> bytes | None:
    """The encoded bytes of one frame, or None when the fragments cannot be split."""
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        return bytes(get_frame(ds.PixelData, frame, number_of_frames=frame_count, extended_offsets=offsets))
    except Exception:  # noqa: BLE001 - a broken fragment table is a corrupt file
        return None


def _gdcm_jpeg_problem(ds: Dataset, stream: bytes) -> str | None:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in _GDCM_PHOTOMETRICS:
        return f"photometric interpretation {photometric or '(none)'} is not supported for JPEG data"
    samples = ds.get("SamplesPerPixel", 1)
    if samples not in (1, 3):
        return f"{samples} samples per pixel are not supported for JPEG data"
    return jpeg_header_problem(stream, int(ds.Rows), int(ds.Columns), int(samples))


def jpeg_header_problem(stream: bytes, rows: int, columns: int, samples: int) -> str | None:
    """Walk a JPEG stream's marker segments up to its first scan header (SOS).

    Refuses everything libjpeg would only *warn* about while reading the header (GDCM
    aborts on those) and a frame header that disagrees with the DICOM header. Errors that
    libjpeg itself reports (bad tables, unknown markers) are left to it.
    """
    n = len(stream)
    if stream[:2] != b"\xff\xd8":
        return "the JPEG stream does not start with a start-of-image marker"
    pos = 2
    frame_components: int | None = None
    adobe_transform: int | None = None
    while True:
        if pos >= n:
            return "the JPEG stream ends before its first scan"
        if stream[pos] != 0xFF:
            return "the JPEG stream has stray bytes between its markers"
        while pos < n and stream[pos] == 0xFF:
            pos += 1
        if pos >= n:
            return "the JPEG stream ends before its first scan"
        marker = stream[pos]
        pos += 1
        if marker == 0x00 or marker == 0xD8 or marker == 0xD9:
            return "the JPEG stream has a misplaced marker before its first scan"
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # TEM and RSTn carry no length
        if pos + 2 > n:
            return "the JPEG stream ends inside a marker segment"
        length = int.from_bytes(stream[pos:pos + 2], "big")
        if length < 2 or pos + length > n:
            return "a JPEG marker segment has an impossible length"
        body = stream[pos + 2:pos + length]
        pos += length
        if marker == 0xE0 and body[:5] == b"JFIF\x00":
            if len(body) >= 6 and body[5] != 1:
                return "the JPEG stream has an unknown JFIF version"
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe_transform = body[11]
        elif marker in _SOF_MARKERS:
            if frame_components is not None:
                return "the JPEG stream has two frame headers"
            problem = _frame_header_problem(body, rows, columns, samples)
            if problem:
                return problem
            frame_components = body[5]
        elif marker == _SOS:
            if frame_components is None:
                return "the JPEG stream has a scan before its frame header"
            if frame_components == 3 and adobe_transform not in (None, 0, 1):
                return "the JPEG stream has an unknown Adobe colour transform"
            count = body[0] if body else 0
            if not 1 <= count <= frame_components or len(body) != 1 + 2 * count + 3:
                return "the JPEG scan header is malformed"
            return None


def _frame_header_problem(body: bytes, rows: int, columns: int, samples: int) -> str | None:
    if len(body) < 6:
        return "the JPEG frame header is too short"
    precision = body[0]
    height = int.from_bytes(body[1:3], "big")
    width = int.from_bytes(body[3:5], "big")
    components = body[5]
    if len(body) != 6 + 3 * components:
        return "the JPEG frame header is malformed"
    if components != samples:
        return f"the JPEG stream has {components} components but the DICOM header says {samples}"
    if not 2 <= precision <= 16:
        return f"the JPEG stream has an impossible sample precision ({precision} bits)"
    if (height, width) != (rows, columns):
        return (f"the JPEG stream is {height} × {width} pixels but the DICOM header says "
                f"{rows} × {columns}")
    return None


# --------------------------------------------------------------------------- deflate bombs

def inflated_size_limit(max_pixels: int) -> int:
    """Bytes a deflated dataset may inflate to: room for `max_pixels` 32-bit pixels + 64 MB."""
    return 64 * 2**20 + 4 * max(int(max_pixels), 0)


def check_deflated_size(path: Path, data: bytes, limit: int) -> None:
    """Refuse a Deflated Explicit VR Little Endian file whose dataset inflates beyond `limit` bytes.

    Counts the inflated size without keeping it. Anything that is not a deflated DICOM file,
    or whose deflate stream is broken, is left to pydicom (which reports it).
    """
    if DEFLATED_UID not in data[:16384]:
        return
    start = _dataset_offset(data)
    if start is None:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = data[start:]
    total = items = 0
    tail = b""
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, INFLATE_STEP)
            total += len(chunk)
            items += (tail + chunk).count(ITEM_TAG)
            tail = chunk[-3:]
            if items > MAX_ITEMS:
                raise too_many_items(path)
            if total > limit:
                raise ImageLoadError(
                    path,
                    f"the deflated DICOM data expands to more than {limit // 2**20:,} MB "
                    f"(a decompression bomb?); refused before reading it, set {MAX_PIXELS_ENV} to raise the limit",
                )
            pending = inflater.unconsumed_tail
    except zlib.error:
        return


def too_many_items(path: Path) -> ImageLoadError:
    return ImageLoadError(
        path,
        f"the DICOM file holds more than {MAX_ITEMS:,} sequence items (a decompression bomb?); "
        "refused before reading it",
    )


def check_item_count(path: Path, data: bytes) -> None:
    """Refuse a DICOM file with more than MAX_ITEMS sequence items (each costs pydicom a Dataset).

    5 million empty items are 40 MB of file but gigabytes once parsed. Deflated datasets are
    counted while they are inflated (`check_deflated_size`).
    """
    if data.count(ITEM_TAG) > MAX_ITEMS:
        raise too_many_items(path)


class ItemCountingReader:
    """A file handle for pydicom that refuses, while pydicom reads, more than MAX_ITEMS items.

    The GUI's header scan (`read_header`) and the header-first size check read files with
    stop_before_pixels, so `check_item_count` never saw their bytes: a 40 MB file of empty
    sequence items kept the folder scan busy for minutes. Only bytes pydicom actually reads
    are counted, each once, so the check costs nothing on an ordinary header.
    """

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path
        self._counted_to = 0
        self._items = 0
        self._looked_ahead = False

    def read(self, size: int = -1) -> bytes:
        pos = self._handle.tell()
        data = self._handle.read(size)
        end = pos + len(data)
        if end > self._counted_to:
            start = max(0, self._counted_to - pos)
            self._items += data.count(ITEM_TAG, max(0, start - 3))   # a tag cut by the last read
            self._counted_to = end
            if self._items > MAX_ITEMS:
                raise too_many_items(self._path)
            if self._items > LOOK_AHEAD_AFTER_ITEMS and not self._looked_ahead:
                self._look_ahead()
        return data

    def _look_ahead(self) -> None:
        """Many items already: count the next LOOK_AHEAD_BYTES at once. pydicom reads an item
        at a time and builds a Dataset for each, so reaching MAX_ITEMS that way took 4 s of
        pure Python (20 s on a loaded machine); one bytes.count decides in milliseconds."""
        self._looked_ahead = True
        here = self._handle.tell()
        ahead = self._handle.read(LOOK_AHEAD_BYTES)
        self._handle.seek(here)
        if self._items + ahead.count(ITEM_TAG) > MAX_ITEMS:
            raise too_many_items(self._path)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)


def _dataset_offset(data: bytes) -> int | None:
    """Where the dataset starts after the preamble and file meta group, or None."""
    handle = io.BytesIO(data)
    try:
        read_preamble(handle, True)
        _read_file_meta_info(handle)
    except Exception:  # noqa: BLE001 - not parsable here: pydicom will say why
        return None
    return handle.tell()
