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

from cxrviewer.core.io.dicom.decode import (
    colour_layout_notes,
    decode_failure_message,
    decode_frame,
    header_layout,
    require_supported_variant,
    unsupported_syntax_message,
)
from cxrviewer.core.io.dicom.header import (
    COLOUR_PHOTOMETRICS,
    JPEG_EXTENDED,
    METADATA_KEYWORDS,
    NUMBER_OF_FRAMES_TAG,
    PHOTOMETRIC_TAG,
    PIXEL_DATA_KEYWORDS,
    PIXEL_DATA_TAG_BYTES,
    TRANSFER_SYNTAX_TAG,
    element_text,
    frame_count,
    has_pixel_data,
    header_metadata,
    looks_like_dicom,
    syntax_name,
    tag_value,
)
from cxrviewer.core.io.dicom.pixels import (
    FLAT_FRACTION,
    MalformedLut,
    apply_lut,
    apply_modality,
    apply_rescale,
    choose_voi,
    colour_to_gray,
    display_inversion,
    pixel_spacing,
    read_lut,
    stored_windows,
    window_leaves_flat,
)
from cxrviewer.core.io.dicom.read import (
    MAX_VALUE_CHARS,
    TagRow,
    check_header_size,
    dicom_tag_rows,
    ensure_transfer_syntax,
    load_dicom,
    parse_dataset,
    read_header,
    remembered_headers,
    repair_number_of_frames,
    require_image_attributes,
    require_pixel_data,
    sniff_dicom,
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
