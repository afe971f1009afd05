"""DICOM reader (pydicom 3), a package of four small modules:

* `header`: tag access, transfer syntax names, metadata for the corner text and info panel;
* `read`: parsing, the header-first checks, `load_dicom` (the whole pipeline), tag listing;
* `decode`: one frame through a safe decoder plugin, and the messages when that fails;
* `pixels`: the pixel pipeline after decoding, in order, each step a small function:

    decode one frame → (colour → gray) → Modality LUT → VOI (LUT sequence, else the file's
    windows as presets, else a percentile auto-window) → polarity (MONOCHROME1 inverts once)

The pixels of the returned XrayImage are the Modality LUT output (or the VOI LUT output when
the file has a VOI LUT sequence); windowing and inversion happen at display time. Every public
name is re-exported here (`from cxrviewer.core.io.dicom import load_dicom` keeps working);
to replace a step in a test, patch it in the module that calls it (e.g. `dicom.read.decode_frame`).
"""
from __future__ import annotations

from cxrviewer.core.io.dicom.header import (
    PIXEL_DATA_KEYWORDS,
    PIXEL_DATA_TAG_BYTES,
    COLOUR_PHOTOMETRICS,
    JPEG_EXTENDED,
    NUMBER_OF_FRAMES_TAG,
    PHOTOMETRIC_TAG,
    TRANSFER_SYNTAX_TAG,
    METADATA_KEYWORDS,
    tag_value,
    syntax_name,
    looks_like_dicom,
    frame_count,
    has_pixel_data,
    element_text,
    header_metadata,
)
from cxrviewer.core.io.dicom.decode import (
    unsupported_syntax_message,
    decode_frame,
    require_supported_variant,
    decode_failure_message,
    header_layout,
    colour_layout_notes,
)
from cxrviewer.core.io.dicom.pixels import (
    FLAT_FRACTION,
    MalformedLut,
    colour_to_gray,
    read_lut,
    apply_lut,
    apply_modality,
    apply_rescale,
    stored_windows,
    window_leaves_flat,
    choose_voi,
    display_inversion,
    pixel_spacing,
)
from cxrviewer.core.io.dicom.read import (
    parse_dataset,
    sniff_dicom,
    ensure_transfer_syntax,
    repair_number_of_frames,
    require_pixel_data,
    require_image_attributes,
    load_dicom,
    remembered_headers,
    read_header,
    check_header_size,
    TagRow,
    MAX_VALUE_CHARS,
    dicom_tag_rows,
)

__all__ = [
    "COLOUR_PHOTOMETRICS",
    "FLAT_FRACTION",
    "JPEG_EXTENDED",
    "MAX_VALUE_CHARS",
    "METADATA_KEYWORDS",
    "MalformedLut",
    "NUMBER_OF_FRAMES_TAG",
    "PHOTOMETRIC_TAG",
    "PIXEL_DATA_KEYWORDS",
    "PIXEL_DATA_TAG_BYTES",
    "TRANSFER_SYNTAX_TAG",
    "TagRow",
    "apply_lut",
    "apply_modality",
    "apply_rescale",
    "check_header_size",
    "choose_voi",
    "colour_layout_notes",
    "colour_to_gray",
    "decode_failure_message",
    "decode_frame",
    "dicom_tag_rows",
    "display_inversion",
    "element_text",
    "ensure_transfer_syntax",
    "frame_count",
    "has_pixel_data",
    "header_layout",
    "header_metadata",
    "load_dicom",
    "looks_like_dicom",
    "parse_dataset",
    "pixel_spacing",
    "read_header",
    "read_lut",
    "remembered_headers",
    "repair_number_of_frames",
    "require_image_attributes",
    "require_pixel_data",
    "require_supported_variant",
    "sniff_dicom",
    "stored_windows",
    "syntax_name",
    "tag_value",
    "unsupported_syntax_message",
    "window_leaves_flat",
]
