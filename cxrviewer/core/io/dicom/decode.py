"""Decoding one DICOM frame with a safe plugin, and the trainee-readable messages when it fails."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.uid import UID

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io._guards import is_plugin_panic, plugin_order, stream_problem
from cxrviewer.core.io.dicom.header import (
    COLOUR_PHOTOMETRICS,
    JPEG_EXTENDED,
    PHOTOMETRIC_TAG,
    _short,
    frame_count,
    syntax_name,
    tag_value,
)

log = logging.getLogger(__name__)


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


def _decode_with_safe_plugin(path: Path, ds: Dataset, decoder: Any, uid: str, frame: int) -> tuple[np.ndarray, dict[str, Any]]:
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
