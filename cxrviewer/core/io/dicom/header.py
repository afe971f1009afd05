"""DICOM header helpers: tag access, transfer syntax names, metadata for the viewer (pydicom 3)."""
from __future__ import annotations

import logging
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

log = logging.getLogger(__name__)


PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


PIXEL_DATA_TAG_BYTES = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) LE / BE


COLOUR_PHOTOMETRICS = ("RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")


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


def tag_value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """ds.<keyword>, or `default` when absent, empty or unparsable (e.g. IS 'abc')."""
    try:
        value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - pydicom converts values lazily and may raise here
        return default
    return default if value is None or value == "" else value


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


def frame_count(ds: Dataset) -> int:
    """Number of frames from the header (1 when absent, empty or nonsense)."""
    try:
        return max(int(tag_value(ds, "NumberOfFrames", 1)), 1)
    except (TypeError, ValueError):
        return 1


def has_pixel_data(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in PIXEL_DATA_KEYWORDS)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


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


def _short(exc: BaseException, limit: int = 160) -> str:
    """First line of an exception message, shortened, for one-line user messages."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
