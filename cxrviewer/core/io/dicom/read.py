"""Reading DICOM files: parsing, the header-first checks, `load_dicom` (the whole pipeline) and the tag listing."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io._common import (
    COLOUR_NOTE,
    check_frame,
    check_pixel_limit,
    display_name,
    has_dicom_preamble,
    max_pixels_limit,
    open_regular,
    read_file_bytes,
)
from cxrviewer.core.io._guards import (
    DEFLATED_UID,
    ItemCountingReader,
    check_deflated_size,
    inflated_size_limit,
)
from cxrviewer.core.io.dicom import header
from cxrviewer.core.io.dicom.decode import colour_layout_notes, decode_frame
from cxrviewer.core.io.dicom.pixels import (
    apply_modality,
    choose_voi,
    colour_to_gray,
    display_inversion,
    pixel_spacing,
)
from cxrviewer.core.io.dicom.pydicom_log import file_warnings
from cxrviewer.core.types import XrayImage, readonly

log = logging.getLogger(__name__)


def parse_dataset(path: Path, data: bytes, stop_before_pixels: bool = False) -> Dataset:
    """Parse DICOM bytes with force=True; a parse failure is a corrupt-file ImageLoadError."""
    check_deflated_size(path, data, inflated_size_limit(max_pixels_limit()))
    try:
        with file_warnings(path):
            return pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken files
        log.info("pydicom could not parse %s", path, exc_info=True)
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({header._short(exc)})") from exc


def sniff_dicom(data: bytes, path: Path | None = None) -> Dataset | None:
    """The parsed dataset when `data` (of `path`, for the log) is DICOM (preamble or recognisable content), else None."""
    try:
        with file_warnings(path or Path("<bytes>")):
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - anything unparsable is simply "not DICOM"
        return None
    return ds if has_dicom_preamble(data) or header.looks_like_dicom(ds) else None


def ensure_transfer_syntax(ds: Dataset) -> tuple[str, ...]:
    """Fill in a missing (0002,0010) from the encoding pydicom inferred while reading."""
    if not isinstance(getattr(ds, "file_meta", None), FileMetaDataset):
        ds.file_meta = FileMetaDataset()
    if header.tag_value(ds.file_meta, "TransferSyntaxUID"):
        return ()
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is False and little is True:
        uid = ExplicitVRLittleEndian
    elif implicit is False and little is False:
        uid = ExplicitVRBigEndian
    else:
        uid = ImplicitVRLittleEndian
    # A new element: assigning the attribute would first parse a damaged one (e.g. VR SQ).
    ds.file_meta[header.TRANSFER_SYNTAX_TAG] = DataElement(header.TRANSFER_SYNTAX_TAG, "UI", uid)
    return (f"the file does not state its transfer syntax; read as {uid.name}",)


def repair_number_of_frames(ds: Dataset) -> tuple[str, ...]:
    """Replace an unparsable or zero Number of Frames by 1 (pydicom would refuse to decode)."""
    if "NumberOfFrames" not in ds:
        return ()
    try:
        if int(ds.NumberOfFrames) >= 1:
            return ()
    except Exception:  # noqa: BLE001 - IS 'ab' raises on access
        pass
    # A new element, not `ds.NumberOfFrames = 1`: that would parse the broken one again.
    ds[header.NUMBER_OF_FRAMES_TAG] = DataElement(header.NUMBER_OF_FRAMES_TAG, "IS", 1)
    return ("Number of Frames in the header is invalid; reading a single frame",)


def require_pixel_data(path: Path, ds: Dataset, data: bytes) -> None:
    """Explain a missing Pixel Data element: truncated file, or a DICOM without an image."""
    if header.has_pixel_data(ds):
        return
    if any(tag in data[132:] for tag in header.PIXEL_DATA_TAG_BYTES):
        raise ImageLoadError(path, "truncated or corrupt DICOM file: its Pixel Data is incomplete")
    if header.tag_value(ds, "Rows") is not None and header.tag_value(ds, "Columns") is not None:
        raise ImageLoadError(
            path,
            "this DICOM file describes an image but has no Pixel Data "
            "(the file may be truncated or only a header)",
        )
    raise ImageLoadError(
        path,
        "this DICOM file contains no image (no Pixel Data): it may be a report, "
        "a structured document or a presentation state",
    )


def require_image_attributes(path: Path, ds: Dataset) -> tuple[int, int]:
    """(rows, columns) from the header; missing image attributes are a clear error."""
    missing = [kw for kw in ("Rows", "Columns", "BitsAllocated") if header.tag_value(ds, kw) is None]
    if missing:
        raise ImageLoadError(path, f"the DICOM image header is incomplete (missing {', '.join(missing)})")
    try:
        return int(ds.Rows), int(ds.Columns)
    except (TypeError, ValueError) as exc:   # e.g. a damaged VR turned Columns into a name
        raise ImageLoadError(path, "corrupt DICOM file: its image size (Rows, Columns) is not a number") from exc


def load_dicom(
    path: Path, data: bytes, sha256: str, frame: int, max_pixels: int, ds: Dataset | None = None
) -> XrayImage:
    """Load one frame of a DICOM file already read into `data` (and maybe parsed into `ds`).

    pydicom's warnings on the way (parsing, decoding) are one log warning naming the file."""
    with file_warnings(path):
        return _load_dicom(path, data, sha256, frame, max_pixels, ds)


def _load_dicom(path: Path, data: bytes, sha256: str, frame: int, max_pixels: int, ds: Dataset | None) -> XrayImage:
    if ds is None:
        ds = parse_dataset(path, data)
    notes = ensure_transfer_syntax(ds)
    notes += repair_number_of_frames(ds)
    require_pixel_data(path, ds, data)
    rows, columns = require_image_attributes(path, ds)
    count = header.frame_count(ds)
    check_pixel_limit(path, rows, columns, count, max_pixels)
    check_frame(path, frame, count)
    notes += colour_layout_notes(path, ds)

    arr, photometric = decode_frame(path, ds, frame)
    monochrome = photometric.startswith("MONOCHROME")
    if monochrome and arr.ndim == 2:
        pixels, modality_notes = apply_modality(arr, ds)
        notes += modality_notes
    else:
        pixels = colour_to_gray(path, arr, photometric, ds)
        notes += (COLOUR_NOTE,)
    pixels = np.asarray(pixels, dtype=np.float32)
    if not np.all(np.isfinite(pixels)):
        finite_min = float(pixels[np.isfinite(pixels)].min()) if np.isfinite(pixels).any() else 0.0
        pixels = np.where(np.isfinite(pixels), pixels, np.float32(finite_min)).astype(np.float32)
        notes += ("some pixel values were not finite numbers (NaN/Inf) and are shown as the minimum",)

    pixels, default, presets, voi_notes = choose_voi(pixels, ds, monochrome)
    invert, polarity_notes = display_inversion(photometric, ds)
    spacing, spacing_kind = pixel_spacing(ds)
    metadata = header.header_metadata(ds)
    if count > 1:
        metadata["Frame"] = f"{frame + 1} of {count}"
    return XrayImage(
        path=path,
        display_name=display_name(path, frame, count),
        pixels=readonly(np.ascontiguousarray(pixels, dtype=np.float32)),
        default_window=default,
        presets=presets,
        photometric=photometric if monochrome else "MONOCHROME2",
        invert_for_display=invert,
        pixel_spacing=spacing,
        spacing_kind=spacing_kind,
        metadata=metadata,
        frame_index=frame,
        frame_count=count,
        notes=notes + voi_notes + polarity_notes,
        sha256=sha256,
    )


_HEADER_MEMO = threading.local()


@contextlib.contextmanager
def remembered_headers() -> Iterator[None]:
    """Within the block, `read_header` of the file it read last is not parsed again (this thread).

    A folder scan checks each file (`core.io.header_problem`) and then groups it
    (`core.study.group_images`), both from its header: parsed once, not twice. The datasets
    must then be treated as read-only, which both are.
    """
    _HEADER_MEMO.last = None
    _HEADER_MEMO.active = True
    try:
        yield
    finally:
        _HEADER_MEMO.active = False
        _HEADER_MEMO.last = None


def read_header(path: str | Path) -> Dataset:
    """The dataset without its pixels, reading the file only up to the Pixel Data (fast).

    Used to group studies and series when a folder is opened; raises ImageLoadError when the
    file is not DICOM or cannot be parsed.
    """
    if not getattr(_HEADER_MEMO, "active", False):
        return _read_header(Path(path))
    key = os.fspath(path)
    last = _HEADER_MEMO.last
    if last is not None and last[0] == key:
        if isinstance(last[1], ImageLoadError):
            raise last[1]
        return last[1]
    try:
        ds = _read_header(Path(path))
    except ImageLoadError as exc:
        _HEADER_MEMO.last = (key, exc)
        raise
    _HEADER_MEMO.last = (key, ds)
    return ds


def _read_header(path: Path) -> Dataset:
    try:
        with open_regular(path) as handle:
            head = handle.read(16384)
            if DEFLATED_UID in head:
                check_deflated_size(path, head + handle.read(), inflated_size_limit(max_pixels_limit()))
            handle.seek(0)
            with file_warnings(path):
                ds = pydicom.dcmread(ItemCountingReader(handle, path), force=True, stop_before_pixels=True)
    except OSError as exc:   # the file cannot be read, or pydicom's "No tag to read at …"
        read_file_bytes(path)  # raises the specific, readable error when the file is the problem
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({header._short(exc)})") from exc
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken files
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({header._short(exc)})") from exc
    if not head:
        raise ImageLoadError(path, "empty file (0 bytes)")
    if not (has_dicom_preamble(head) or header.looks_like_dicom(ds)):
        raise ImageLoadError(path, "not a DICOM file")
    return ds


def check_header_size(path: Path, max_pixels: int) -> None:
    """Refuse a DICOM file whose header promises more than `max_pixels`, reading only the header.

    Used before a large file is read whole: its Rows × Columns × frames decide, not its bytes.
    Files that are not DICOM, deflated ones (see `check_deflated_size`) and headers pydicom
    cannot parse are left to the full read, which reports them.
    """
    with open_regular(path) as handle:
        head = handle.read(16384)
        if not has_dicom_preamble(head) or DEFLATED_UID in head:
            return
        handle.seek(0)
        try:
            with file_warnings(path):
                ds = pydicom.dcmread(ItemCountingReader(handle, path), force=True, stop_before_pixels=True)
                rows, columns = int(ds.Rows), int(ds.Columns)
        except ImageLoadError:
            raise
        except Exception:  # noqa: BLE001 - the full read says what is wrong
            return
    check_pixel_limit(path, rows, columns, header.frame_count(ds), max_pixels)


TagRow = tuple[str, str, str, str]


MAX_VALUE_CHARS = 200


def dicom_tag_rows(path: str | Path) -> list[TagRow]:
    """Every element (file meta first) as (tag, name, VR, value) rows for the tag browser.

    Sequences are flattened: items and their elements follow the sequence row, with the tag
    prefixed by one ">" per nesting level (the DICOM standard's notation) and the name indented.
    """
    path = Path(path)
    try:
        data = read_file_bytes(path)
        ds = parse_dataset(path, data)
        if not (has_dicom_preamble(data) or header.looks_like_dicom(ds)):
            raise ImageLoadError(path, "not a DICOM file")
        rows: list[TagRow] = []
        if getattr(ds, "file_meta", None):
            _append_rows(ds.file_meta, 0, rows)
        _append_rows(ds, 0, rows)
        return rows
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - never let pydicom's errors reach the UI
        log.exception("reading tags of %s failed", path)
        raise ImageLoadError(path, f"the DICOM tags cannot be read ({header._short(exc)})") from exc


def _append_rows(ds: Iterable[DataElement], depth: int, rows: list[TagRow]) -> None:
    prefix = ">" * depth
    indent = "  " * depth
    for elem in ds:
        tag = f"{prefix}({elem.tag.group:04X},{elem.tag.element:04X})"
        name = indent + (elem.name or elem.keyword)
        vr = str(elem.VR)
        if vr == "SQ":
            items = elem.value or []
            rows.append((tag, name, vr, f"<{len(items)} item{'s' if len(items) != 1 else ''}>"))
            for number, item in enumerate(items, 1):
                rows.append((f">{prefix}(FFFE,E000)", f"{indent}  Item {number}", "", ""))
                _append_rows(item, depth + 1, rows)
            continue
        rows.append((tag, name, vr, _truncate(_row_value(elem))))


def _row_value(elem: DataElement) -> str:
    try:
        if str(elem.VR) in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or OW"):
            value = elem.value
            if isinstance(value, (bytes, bytearray)):
                return f"<{len(value)} bytes>"
        if str(elem.VR) == "UI":
            uid = str(elem.value or "")
            name = header.syntax_name(uid)
            return uid if name == uid else f"{uid} ({name})"
        return header.element_text(elem)
    except Exception:  # noqa: BLE001 - a broken value shows as such, the rest still lists
        return "<unreadable value>"


def _truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
