"""DICOM reader (pydicom 3).

The pixel pipeline, in order, each step a small function:

    decode one frame → (colour → gray) → Modality LUT → VOI (LUT sequence, else the file's
    windows as presets, else a percentile auto-window) → polarity (MONOCHROME1 inverts once)

The pixels of the returned XrayImage are the Modality LUT output (or the VOI LUT output when
the file has a VOI LUT sequence); windowing and inversion happen at display time.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, as_pixel_options, convert_color_space, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import apply_window, full_range_window, percentile_window
from cxrviewer.core.io._common import (
    COLOUR_NOTE,
    PRESET_AUTO,
    PRESET_FULL,
    PRESET_VOI_LUT,
    check_frame,
    check_pixel_limit,
    display_name,
    has_dicom_preamble,
    max_pixels_limit,
    open_regular,
    read_file_bytes,
    rgb_to_gray,
)
from cxrviewer.core.io._guards import (
    DEFLATED_UID,
    ItemCountingReader,
    check_deflated_size,
    inflated_size_limit,
    is_plugin_panic,
    plugin_order,
    stream_problem,
)
from cxrviewer.core.types import SpacingKind, Window, WindowPreset, XrayImage, readonly

log = logging.getLogger(__name__)

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_DATA_TAG_BYTES = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) LE / BE
COLOUR_PHOTOMETRICS = ("RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
FLAT_FRACTION = 0.98
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
NUMBER_OF_FRAMES_TAG = 0x00280008
PHOTOMETRIC_TAG = 0x00280004
TRANSFER_SYNTAX_TAG = 0x00020010

# Tags that any real DICOM object carries at least one of; used to tell a DICOM file without
# a preamble from random bytes that pydicom's force=True happened to parse.
_DICOM_EVIDENCE = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "PatientID", "PatientName", "Rows", "Columns", "PhotometricInterpretation", "PixelData",
)

# Names pydicom 3.0 does not know yet.
_EXTRA_SYNTAX_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}

METADATA_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyDate", "StudyTime", "StudyDescription", "SeriesDescription", "Modality",
    "BodyPartExamined", "ViewPosition", "PatientOrientation", "Laterality", "ImageLaterality",
    "AccessionNumber", "InstitutionName", "Manufacturer", "ManufacturerModelName",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
    "StudyID", "SeriesNumber", "InstanceNumber", "AcquisitionDate", "ContentDate",
    "PhotometricInterpretation", "Rows", "Columns", "BitsStored", "NumberOfFrames",
    "KVP", "Exposure", "DerivationDescription", "LossyImageCompression",
    "LossyImageCompressionRatio", "ImageComments",
)


class MalformedLut(ValueError):
    """A Modality or VOI LUT sequence item that cannot be applied."""


def tag_value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """ds.<keyword>, or `default` when absent, empty or unparsable (e.g. IS 'abc')."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - pydicom converts values lazily and may raise here
        return default
    return default if value is None or value == "" else value


# --------------------------------------------------------------------------- reading

def syntax_name(uid: str) -> str:
    """A transfer syntax's readable name ("JPEG 2000 Image Compression"), or the UID itself."""
    uid = str(uid)
    if uid in _EXTRA_SYNTAX_NAMES:
        return _EXTRA_SYNTAX_NAMES[uid]
    return UID(uid).name


def looks_like_dicom(ds: Dataset) -> bool:
    """True when a force-read dataset carries real DICOM attributes (not parsed noise)."""
    if len(ds) == 0 and not getattr(ds, "file_meta", None):
        return False
    if getattr(ds, "file_meta", None) and "TransferSyntaxUID" in ds.file_meta:
        return True
    return any(keyword in ds for keyword in _DICOM_EVIDENCE)


def parse_dataset(path: Path, data: bytes, stop_before_pixels: bool = False) -> Dataset:
    """Parse DICOM bytes with force=True; a parse failure is a corrupt-file ImageLoadError."""
    check_deflated_size(path, data, inflated_size_limit(max_pixels_limit()))
    try:
        return pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken files
        log.info("pydicom could not parse %s", path, exc_info=True)
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({_short(exc)})") from exc


def sniff_dicom(data: bytes) -> Dataset | None:
    """The parsed dataset when `data` is DICOM (preamble or recognisable content), else None."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - anything unparsable is simply "not DICOM"
        return None
    return ds if has_dicom_preamble(data) or looks_like_dicom(ds) else None


def ensure_transfer_syntax(ds: Dataset) -> tuple[str, ...]:
    """Fill in a missing (0002,0010) from the encoding pydicom inferred while reading."""
    if not isinstance(getattr(ds, "file_meta", None), FileMetaDataset):
        ds.file_meta = FileMetaDataset()
    if tag_value(ds.file_meta, "TransferSyntaxUID"):
        return ()
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is False and little is True:
        uid = ExplicitVRLittleEndian
    elif implicit is False and little is False:
        uid = ExplicitVRBigEndian
    else:
        uid = ImplicitVRLittleEndian
    # A new element: assigning the attribute would first parse a damaged one (e.g. VR SQ).
    ds.file_meta[TRANSFER_SYNTAX_TAG] = DataElement(TRANSFER_SYNTAX_TAG, "UI", uid)
    return (f"the file does not state its transfer syntax; read as {uid.name}",)


def frame_count(ds: Dataset) -> int:
    """Number of frames from the header (1 when absent, empty or nonsense)."""
    try:
        return max(int(tag_value(ds, "NumberOfFrames", 1)), 1)
    except (TypeError, ValueError):
        return 1


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
    ds[NUMBER_OF_FRAMES_TAG] = DataElement(NUMBER_OF_FRAMES_TAG, "IS", 1)
    return ("Number of Frames in the header is invalid; reading a single frame",)


def has_pixel_data(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in PIXEL_DATA_KEYWORDS)


def require_pixel_data(path: Path, ds: Dataset, data: bytes) -> None:
    """Explain a missing Pixel Data element: truncated file, or a DICOM without an image."""
    if has_pixel_data(ds):
        return
    if any(tag in data[132:] for tag in PIXEL_DATA_TAG_BYTES):
        raise ImageLoadError(path, "truncated or corrupt DICOM file: its Pixel Data is incomplete")
    if tag_value(ds, "Rows") is not None and tag_value(ds, "Columns") is not None:
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
    missing = [kw for kw in ("Rows", "Columns", "BitsAllocated") if tag_value(ds, kw) is None]
    if missing:
        raise ImageLoadError(path, f"the DICOM image header is incomplete (missing {', '.join(missing)})")
    try:
        return int(ds.Rows), int(ds.Columns)
    except (TypeError, ValueError) as exc:   # e.g. a damaged VR turned Columns into a name
        raise ImageLoadError(path, "corrupt DICOM file: its image size (Rows, Columns) is not a number") from exc


# --------------------------------------------------------------------------- decoding

def _plugin_hint(uid: str) -> str:
    """Which installable decoder handles a compressed syntax (pydicom 3 picks it up itself)."""
    name = syntax_name(uid)
    if uid in ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"):
        return ("pydicom has no decoder plugin for JPEG 2000 Part 2 (multi-component); "
                "convert the file first, e.g. with GDCM: gdcmconv --raw IN.dcm OUT.dcm")
    if "JPEG XL" in name:
        return ("pydicom 3.0 has no JPEG XL decoder plugin; convert the file to an "
                "uncompressed or JPEG 2000 transfer syntax first")
    if "MPEG" in name or "HEVC" in name or "H.264" in name or "H.265" in name:
        return "this is a video transfer syntax; cxrviewer shows still radiographs only"
    if "High-Throughput" in name:
        return "it is decoded by the pylibjpeg-openjpeg plugin (version 2.4 or later)"
    if "JPEG 2000" in name:
        return "it is decoded by the pylibjpeg-openjpeg plugin (or python-gdcm)"
    if "JPEG-LS" in name:
        return "it is decoded by the pyjpegls plugin (or python-gdcm)"
    if "JPEG" in name:
        return "it is decoded by python-gdcm (or pylibjpeg-libjpeg, GPL-licensed)"
    if "RLE" in name:
        return "it is decoded by pydicom itself or the pylibjpeg-rle plugin"
    return "no installed pydicom decoder plugin supports it"


def unsupported_syntax_message(uid: str) -> str:
    return f"unsupported transfer syntax {syntax_name(uid)} ({uid}): {_plugin_hint(uid)}"


def decode_frame(path: Path, ds: Dataset, frame: int) -> tuple[np.ndarray, str]:
    """Decode one frame; returns the array and its photometric interpretation after decoding."""
    uid = str(ds.file_meta.TransferSyntaxUID)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise ImageLoadError(path, unsupported_syntax_message(uid)) from None
    if not decoder.is_available:
        raise ImageLoadError(
            path,
            f"cannot decode {syntax_name(uid)}: no decoder plugin is installed; {_plugin_hint(uid)}",
        )
    require_supported_variant(path, ds, decoder, uid)
    arr, meta = _decode_with_safe_plugin(path, ds, decoder, uid, frame)
    photometric = str(meta.get("photometric_interpretation") or tag_value(ds, "PhotometricInterpretation", ""))
    return arr, photometric.strip().upper()


def _decode_with_safe_plugin(path: Path, ds: Dataset, decoder: Any, uid: str, frame: int) -> tuple[np.ndarray, dict]:
    """Decode with each plugin `plugin_order` allows until one succeeds (see core/io/_guards.py)."""
    try:
        options = as_pixel_options(ds)
    except Exception as exc:  # noqa: BLE001 - pydicom parses the image attributes lazily, here
        raise ImageLoadError(path, f"corrupt DICOM file: its image attributes cannot be read ({_short(exc)})") from exc
    if not decoder.is_encapsulated:
        plugins = [""]
    else:
        plugins = plugin_order(list(decoder.available_plugins))
    errors: list[Exception] = []
    for plugin in plugins:
        problem = stream_problem(ds, uid, plugin, frame, frame_count(ds))
        if problem:
            raise ImageLoadError(path, f"the compressed {syntax_name(uid)} image data cannot be decoded: {problem}")
        try:
            return decoder.as_array(ds, index=frame, validate=True, decoding_plugin=plugin, **options)
        except BaseException as exc:  # noqa: BLE001 - plugins raise anything on bad streams
            if not (isinstance(exc, Exception) or is_plugin_panic(exc)):
                raise   # KeyboardInterrupt, SystemExit
            log.info("decoding %s with plugin %r failed", path, plugin or "native", exc_info=True)
            errors.append(exc if isinstance(exc, Exception) else RuntimeError(f"decoder panic: {exc}"))
    if not errors:
        raise ImageLoadError(path, unsupported_syntax_message(uid))
    raise ImageLoadError(path, decode_failure_message(uid, errors[0], header_layout(ds))) from errors[0]


def require_supported_variant(path: Path, ds: Dataset, decoder: Any, uid: str) -> None:
    """12-bit JPEG Extended is legal DICOM, but only pylibjpeg-libjpeg (GPL) decodes it."""
    bits = tag_value(ds, "BitsStored")
    if uid == JPEG_EXTENDED and bits not in (None, 8) and "pylibjpeg" not in decoder.available_plugins:
        raise ImageLoadError(
            path,
            f"unsupported transfer syntax variant {syntax_name(uid)} ({uid}) with {bits}-bit samples: "
            "12-bit JPEG is decoded by the pylibjpeg-libjpeg plugin (GPL-licensed, not installed); "
            "or convert the file first, e.g. with GDCM: gdcmconv --raw IN.dcm OUT.dcm",
        )


def decode_failure_message(uid: str, exc: Exception, layout: str = "") -> str:
    """One line for a failed decode; numpy's own words ("operands could not be broadcast")
    are replaced by what the header describes, which a trainee can compare with the file."""
    name = syntax_name(uid)
    text = str(exc)
    syntax = UID(uid)
    if syntax.is_transfer_syntax and syntax.is_compressed:
        return f"the compressed {name} image data is corrupt or truncated and cannot be decoded"
    if "less than expected" in text or "shorter than expected" in text:
        return f"truncated DICOM file: its pixel data is incomplete ({_short(exc)})"
    if layout and isinstance(exc, (ValueError, TypeError, IndexError)) and _is_numpy_wording(text):
        return f"the pixel data does not match its header ({layout}) and cannot be decoded ({name})"
    return f"the pixel data cannot be decoded ({name}): {_short(exc)}"


def _is_numpy_wording(text: str) -> bool:
    return any(words in text for words in ("broadcast", "ndarray", "reshape", "shape", "dtype", "index"))


def header_layout(ds: Dataset) -> str:
    """The image layout the header describes, in words: "photometric interpretation YBR_FULL,
    1 sample per pixel of 8 bits, 32 × 40 pixels"."""
    photometric = str(tag_value(ds, "PhotometricInterpretation", "(none)")).strip()
    samples = tag_value(ds, "SamplesPerPixel", 1)
    bits = tag_value(ds, "BitsAllocated", "?")
    plural = "" if samples == 1 else "s"
    return (f"photometric interpretation {photometric}, {samples} sample{plural} per pixel of {bits} bits, "
            f"{tag_value(ds, 'Rows', '?')} × {tag_value(ds, 'Columns', '?')} pixels")


def colour_layout_notes(path: Path, ds: Dataset) -> tuple[str, ...]:
    """Settle a colour photometric interpretation that does not fit the samples, before decoding.

    RGB or YBR with 1 sample per pixel: that one sample is all there is, so it is shown as
    gray (pydicom's YBR conversion failed with numpy's "operands could not be broadcast").
    YBR with samples deeper than 8 bits: pydicom converts 8-bit YBR only; refused in words.
    """
    photometric = str(tag_value(ds, "PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR" or photometric not in COLOUR_PHOTOMETRICS:
        return ()
    samples = tag_value(ds, "SamplesPerPixel", 1)
    if samples == 1:
        ds[PHOTOMETRIC_TAG] = DataElement(PHOTOMETRIC_TAG, "CS", "MONOCHROME2")
        return (f"the header calls this a colour image ({photometric}) but it has one sample per pixel; "
                "shown as a gray image",)
    bits = tag_value(ds, "BitsAllocated", 8)
    if photometric.startswith("YBR") and samples == 3 and bits != 8 and not UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        raise ImageLoadError(
            path,
            f"{photometric} colour with {bits}-bit samples cannot be converted to gray; only 8-bit "
            f"{photometric} is supported (the header gives {header_layout(ds)})",
        )
    return ()


# --------------------------------------------------------------------------- colour

def colour_to_gray(path: Path, arr: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """RGB / YBR / PALETTE COLOR → RGB → luminance."""
    try:
        if photometric == "PALETTE COLOR":
            rgb = apply_color_lut(arr, ds)
        elif photometric.startswith("YBR") and arr.ndim == 3:
            rgb = convert_color_space(arr, photometric, "RGB")
        else:
            rgb = arr
    except Exception as exc:  # noqa: BLE001 - malformed palettes raise assorted errors
        raise ImageLoadError(path, f"the colour lookup table is malformed ({_short(exc)})") from exc
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return rgb_to_gray(rgb)


# --------------------------------------------------------------------------- LUTs

def _is_little_endian(ds: Dataset) -> bool:
    little = getattr(ds, "original_encoding", (None, None))[1]
    if little is None:
        uid = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) else None
        return True if uid is None else bool(UID(uid).is_little_endian)
    return bool(little)


def read_lut(item: Dataset, ds: Dataset) -> tuple[int, np.ndarray]:
    """(first mapped value, table) of a Modality/VOI LUT item; MalformedLut when unusable."""
    descriptor = item.get("LUTDescriptor")
    if descriptor is None or descriptor == "" or descriptor == b"":
        raise MalformedLut("LUT Descriptor missing")
    if isinstance(descriptor, (bytes, bytearray)):
        order = "<" if _is_little_endian(ds) else ">"
        descriptor = list(np.frombuffer(descriptor[:6], dtype=f"{order}u2"))
    values = list(descriptor) if isinstance(descriptor, (list, MultiValue, tuple)) else [descriptor]
    if len(values) != 3:
        raise MalformedLut(f"LUT Descriptor has {len(values)} values instead of 3")
    entries, first_mapped, bits = (int(v) for v in values)
    entries = entries or 65536
    if int(tag_value(ds, "PixelRepresentation", 0)) == 1 and first_mapped >= 32768:
        first_mapped -= 65536
    table = _lut_table(item, ds, entries, bits)
    return first_mapped, table


def _lut_table(item: Dataset, ds: Dataset, entries: int, bits: int) -> np.ndarray:
    raw = item.get("LUTData")
    if raw is None or (isinstance(raw, (bytes, bytearray, list, MultiValue)) and len(raw) == 0):
        raise MalformedLut("LUT Data missing")
    if isinstance(raw, (bytes, bytearray)):
        if bits == 8 and len(raw) == entries:
            table = np.frombuffer(raw, dtype=np.uint8)
        else:
            order = "<" if _is_little_endian(ds) else ">"
            table = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=f"{order}u2")
    elif isinstance(raw, (int, float)):
        table = np.array([raw])
    else:
        table = np.asarray(list(raw))
    if table.size == 0:
        raise MalformedLut("LUT Data is empty")
    return table.astype(np.float32)


def apply_lut(values: np.ndarray, first_mapped: int, table: np.ndarray) -> np.ndarray:
    """Look `values` up in `table`; values below/above the table clamp to its first/last entry."""
    if np.issubdtype(values.dtype, np.integer):
        index = values.astype(np.int64)
    else:
        index = np.rint(values).astype(np.int64)
    index -= first_mapped
    np.clip(index, 0, table.size - 1, out=index)
    return table[index]


def apply_modality(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """Modality LUT sequence, else Rescale Slope/Intercept; a malformed sequence never fails."""
    notes: tuple[str, ...] = ()
    sequence = tag_value(ds, "ModalityLUTSequence")
    if sequence:
        try:
            first_mapped, table = read_lut(sequence[0], ds)
            return apply_lut(arr, first_mapped, table).astype(np.float32), notes
        except Exception as exc:  # noqa: BLE001 - a broken LUT falls back, it never fails
            fallback = "Rescale Slope/Intercept" if _has_rescale(ds) else "stored values"
            notes += (f"Modality LUT sequence is malformed ({exc}); using {fallback}",)
    pixels, rescale_notes = apply_rescale(arr, ds)
    return pixels, notes + rescale_notes


def _has_rescale(ds: Dataset) -> bool:
    return tag_value(ds, "RescaleSlope") is not None or tag_value(ds, "RescaleIntercept") is not None


def apply_rescale(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """stored × slope + intercept (defaults 1 and 0), as float32."""
    pixels = arr.astype(np.float32)
    try:
        slope = float(tag_value(ds, "RescaleSlope", 1.0))
        intercept = float(tag_value(ds, "RescaleIntercept", 0.0))
    except (TypeError, ValueError):
        return pixels, ("Rescale Slope/Intercept cannot be read; using stored values",)
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        return pixels, (f"Rescale Slope {slope:g} / Intercept {intercept:g} is invalid; using stored values",)
    if slope != 1.0:
        pixels *= np.float32(slope)
    if intercept != 0.0:
        pixels += np.float32(intercept)
    return pixels, ()


# --------------------------------------------------------------------------- VOI

def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def stored_windows(ds: Dataset) -> list[WindowPreset]:
    """Each valid Window Center/Width pair, named from its explanation when there is one."""
    centers = _as_list(tag_value(ds, "WindowCenter"))
    widths = _as_list(tag_value(ds, "WindowWidth"))
    explanations = _as_list(tag_value(ds, "WindowCenterWidthExplanation"))
    presets: list[WindowPreset] = []
    used: set[str] = set()
    for i, (center, width) in enumerate(zip(centers, widths)):
        try:
            c, w = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
            continue
        label = str(explanations[i]).strip() if i < len(explanations) else ""
        name = label or f"Window {i + 1} ({c:g}/{w:g})"
        if name in used or name in (PRESET_AUTO, PRESET_FULL, PRESET_VOI_LUT):
            name = f"{name} ({i + 1})"
        used.add(name)
        presets.append(WindowPreset(name, Window(c, w)))
    return presets


def _sample(pixels: np.ndarray, target: int = 250_000) -> np.ndarray:
    flat = pixels.reshape(-1)
    step = max(1, flat.size // target)
    return flat[::step]


def window_leaves_flat(pixels: np.ndarray, window: Window, fraction: float = FLAT_FRACTION) -> bool:
    """True when `window` shows the image as (almost) one gray: ≥98% of pixels on one level,
    or 98% of them within a band of 2 gray levels."""
    shown = apply_window(_sample(pixels), window)
    if shown.size == 0:
        return False
    counts = np.bincount(shown, minlength=256)
    if counts.max() >= fraction * shown.size:
        return True
    low, high = np.percentile(shown, [(1 - fraction) * 50, 100 - (1 - fraction) * 50])
    return bool(high - low < 2)


def choose_voi(pixels: np.ndarray, ds: Dataset, monochrome: bool) -> tuple[
        np.ndarray, Window, tuple[WindowPreset, ...], tuple[str, ...]]:
    """VOI LUT sequence when present (its output becomes the pixels), else the file's windows."""
    notes: tuple[str, ...] = ()
    sequence = tag_value(ds, "VOILUTSequence") if monochrome else None
    if sequence:
        try:
            first_mapped, table = read_lut(sequence[0], ds)
            lut_pixels = apply_lut(pixels, first_mapped, table).astype(np.float32)
            lut_window = _range_window(float(table.min()), float(table.max()))
            presets = (
                WindowPreset(PRESET_VOI_LUT, lut_window),
                WindowPreset(PRESET_AUTO, percentile_window(lut_pixels)),
                WindowPreset(PRESET_FULL, full_range_window(lut_pixels)),
            )
            return lut_pixels, lut_window, presets, notes
        except Exception as exc:  # noqa: BLE001 - a broken LUT falls back, it never fails
            notes += (f"VOI LUT sequence is malformed ({exc}); using the window settings instead",)

    windows = stored_windows(ds)
    auto = percentile_window(pixels)
    presets = (*windows, WindowPreset(PRESET_AUTO, auto), WindowPreset(PRESET_FULL, full_range_window(pixels)))
    if not windows:
        return pixels, auto, presets, notes
    first = windows[0].window
    if window_leaves_flat(pixels, first):
        notes += (f"the file's window ({first.center:g}/{first.width:g}) shows an almost uniform image; "
                  "showing an automatic window instead",)
        return pixels, auto, presets, notes
    return pixels, first, presets, notes


def _range_window(low: float, high: float) -> Window:
    width = max(high - low, 1.0)
    return Window(low + width / 2.0, width)


# --------------------------------------------------------------------------- polarity, spacing

def display_inversion(photometric: str, ds: Dataset) -> tuple[bool, tuple[str, ...]]:
    """Invert once for MONOCHROME1 (INVERSE there says the same); INVERSE on MONOCHROME2 inverts."""
    shape = str(tag_value(ds, "PresentationLUTShape", "")).strip().upper()
    if photometric == "MONOCHROME1":
        if shape == "IDENTITY":
            return True, ("Presentation LUT Shape IDENTITY contradicts MONOCHROME1; shown as MONOCHROME1",)
        return True, ()
    if photometric == "MONOCHROME2":
        return shape == "INVERSE", ()
    return False, ()


def _valid_spacing(value: Any) -> tuple[float, float] | None:
    values = _as_list(value)
    if len(values) < 2:
        return None
    try:
        row, column = float(values[0]), float(values[1])
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(row) and np.isfinite(column)) or row <= 0 or column <= 0:
        return None
    return row, column


def _functional_group_spacing(ds: Dataset) -> Any:
    try:
        return ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].get("PixelSpacing")
    except Exception:  # noqa: BLE001 - absent or malformed functional groups: no spacing here
        return None


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, SpacingKind]:
    """Pixel Spacing → PATIENT, else Imager Pixel Spacing → DETECTOR, else NONE (zeros ignored)."""
    for value, kind in (
        (tag_value(ds, "PixelSpacing"), SpacingKind.PATIENT),
        (_functional_group_spacing(ds), SpacingKind.PATIENT),
        (tag_value(ds, "ImagerPixelSpacing"), SpacingKind.DETECTOR),
    ):
        spacing = _valid_spacing(value)
        if spacing:
            return spacing, kind
    return None, SpacingKind.NONE


# --------------------------------------------------------------------------- metadata

def _format_date(text: str) -> str:
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def _format_time(text: str) -> str:
    digits = text.split(".")[0]
    if len(digits) >= 4 and digits.isdigit():
        parts = [digits[i:i + 2] for i in range(0, min(len(digits), 6), 2)]
        return ":".join(parts)
    return text


def _format_person(value: Any) -> str:
    parts = [p for p in str(value).split("=")[0].split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    return ", ".join(p for p in (family, given) if p)


def element_text(elem: DataElement) -> str:
    """A one-line readable string for a data element's value."""
    value = elem.value
    if value is None:
        return ""
    vr = str(elem.VR)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if vr == "PN":
        return "\\".join(_format_person(v) for v in _as_list(value))
    if vr == "DA":
        return "\\".join(_format_date(str(v)) for v in _as_list(value))
    if vr == "TM":
        return "\\".join(_format_time(str(v)) for v in _as_list(value))
    if vr == "UI":
        return "\\".join(_uid_text(str(v)) for v in _as_list(value))
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return " ".join(str(value).split())


def _uid_text(uid: str) -> str:
    name = syntax_name(uid)
    return uid if name == uid else name


def header_metadata(ds: Dataset) -> dict[str, str]:
    """Readable strings for the corner overlay and info panel (present, non-empty tags only)."""
    meta: dict[str, str] = {"Format": "DICOM"}
    for keyword in METADATA_KEYWORDS:
        try:
            elem = ds.data_element(keyword)
            text = element_text(elem) if elem is not None else ""
        except Exception:  # noqa: BLE001 - one odd tag must not hide the image
            continue
        if keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            text = str(tag_value(ds, keyword, "")).strip()
        if text:
            meta[keyword] = text
    uid = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) else None
    if uid:
        meta["TransferSyntax"] = syntax_name(str(uid))
        meta["TransferSyntaxUID"] = str(uid)
    return meta


# --------------------------------------------------------------------------- entry points

def load_dicom(
    path: Path, data: bytes, sha256: str, frame: int, max_pixels: int, ds: Dataset | None = None
) -> XrayImage:
    """Load one frame of a DICOM file already read into `data` (and maybe parsed into `ds`)."""
    if ds is None:
        ds = parse_dataset(path, data)
    notes = ensure_transfer_syntax(ds)
    notes += repair_number_of_frames(ds)
    require_pixel_data(path, ds, data)
    rows, columns = require_image_attributes(path, ds)
    count = frame_count(ds)
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
    metadata = header_metadata(ds)
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


def read_header(path: str | Path) -> Dataset:
    """The dataset without its pixels, reading the file only up to the Pixel Data (fast).

    Used to group studies and series when a folder is opened; raises ImageLoadError when the
    file is not DICOM or cannot be parsed.
    """
    path = Path(path)
    try:
        with open_regular(path) as handle:
            head = handle.read(16384)
            if DEFLATED_UID in head:
                check_deflated_size(path, head + handle.read(), inflated_size_limit(max_pixels_limit()))
            handle.seek(0)
            ds = pydicom.dcmread(ItemCountingReader(handle, path), force=True, stop_before_pixels=True)
    except OSError as exc:   # the file cannot be read, or pydicom's "No tag to read at …"
        read_file_bytes(path)  # raises the specific, readable error when the file is the problem
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({_short(exc)})") from exc
    except ImageLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for broken files
        raise ImageLoadError(path, f"corrupt or truncated DICOM file ({_short(exc)})") from exc
    if not head:
        raise ImageLoadError(path, "empty file (0 bytes)")
    if not (has_dicom_preamble(head) or looks_like_dicom(ds)):
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
            ds = pydicom.dcmread(ItemCountingReader(handle, path), force=True, stop_before_pixels=True)
            rows, columns = int(ds.Rows), int(ds.Columns)
        except ImageLoadError:
            raise
        except Exception:  # noqa: BLE001 - the full read says what is wrong
            return
    check_pixel_limit(path, rows, columns, frame_count(ds), max_pixels)


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
        if not (has_dicom_preamble(data) or looks_like_dicom(ds)):
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
        raise ImageLoadError(path, f"the DICOM tags cannot be read ({_short(exc)})") from exc


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
            name = syntax_name(uid)
            return uid if name == uid else f"{uid} ({name})"
        return element_text(elem)
    except Exception:  # noqa: BLE001 - a broken value shows as such, the rest still lists
        return "<unreadable value>"


def _truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = " ".join(text.split()) if ("\n" in text or "\r" in text) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(exc: BaseException, limit: int = 160) -> str:
    """First line of an exception message, shortened, for one-line user messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
