"""Text drawn in the four corners of the image view, and the anonymised variant of it.

`build_corner_text` is pure (testable without painting); `paint_corner_text` draws it in
viewport coordinates with a dark halo so it stays legible over bright lung fields.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from cxrviewer.core.types import Window

ANONYMISED_PLACEHOLDER = "Identifiers hidden"

# Metadata keys (DICOM keywords) that identify a person or place; hidden when anonymising.
IDENTIFYING_KEYS = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "OtherPatientIDs",
        "OtherPatientNames",
        "AccessionNumber",
        "InstitutionName",
        "InstitutionAddress",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "StationName",
    }
)


@dataclass(frozen=True)
class CornerText:
    top_left: tuple[str, ...] = ()
    top_right: tuple[str, ...] = ()
    bottom_left: tuple[str, ...] = ()
    bottom_right: tuple[str, ...] = ()

    def all_lines(self) -> tuple[str, ...]:
        return self.top_left + self.top_right + self.bottom_left + self.bottom_right


@dataclass(frozen=True)
class ViewState:
    """What the bottom-right corner reports about the current view."""

    window: Window | None = None
    zoom: float = 1.0
    inverted: bool = False
    rotation_degrees: int = 0
    flipped: bool = False
    frame_index: int = 0
    frame_count: int = 1
    width: int = 0
    height: int = 0


def _lookup(metadata: Mapping[str, str], *keys: str) -> str:
    """First non-empty value among `keys`, tolerating keyword / snake_case spellings."""
    for key in keys:
        for variant in (key, _snake(key)):
            value = metadata.get(variant)
            if value is not None and str(value).strip():
                return str(value).strip()
    return ""


def _snake(key: str) -> str:
    out = []
    for i, ch in enumerate(key):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def format_person_name(value: str) -> str:
    """DICOM PN 'Family^Given^Middle' -> 'Family, Given Middle'."""
    if "^" not in value:
        return value
    parts = [p.strip() for p in value.split("=")[0].split("^")]
    family = parts[0]
    rest = " ".join(p for p in parts[1:3] if p)
    return f"{family}, {rest}" if family and rest else (family or rest)


def format_date(value: str) -> str:
    """DICOM DA 'YYYYMMDD' -> 'YYYY-MM-DD'; anything else unchanged."""
    digits = value.strip()
    if len(digits) == 8 and digits.isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return digits


def format_number(value: float) -> str:
    """Window numbers: integers for wide ranges, 3 significant digits for narrow ones."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def build_corner_text(
    metadata: Mapping[str, str], view: ViewState, *, anonymise: bool
) -> CornerText:
    """The four corners' lines for an image's metadata and the current view."""
    name = format_person_name(_lookup(metadata, "PatientName"))
    patient_id = _lookup(metadata, "PatientID")
    birth = format_date(_lookup(metadata, "PatientBirthDate"))
    sex = _lookup(metadata, "PatientSex")
    institution = _lookup(metadata, "InstitutionName")
    accession = _lookup(metadata, "AccessionNumber")
    study_date = format_date(_lookup(metadata, "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"))
    study_desc = _lookup(metadata, "StudyDescription")
    series_desc = _lookup(metadata, "SeriesDescription")
    modality = _lookup(metadata, "Modality")
    view_position = _lookup(metadata, "ViewPosition")
    body_part = _lookup(metadata, "BodyPartExamined")

    top_left: list[str] = []
    if anonymise:
        top_left.append(ANONYMISED_PLACEHOLDER)
        if sex:
            top_left.append(f"Sex {sex}")
    else:
        if name:
            top_left.append(name)
        if patient_id:
            top_left.append(f"ID {patient_id}")
        details = "  ".join(p for p in (f"DOB {birth}" if birth else "", f"Sex {sex}" if sex else "") if p)
        if details:
            top_left.append(details)

    top_right: list[str] = []
    if institution and not anonymise:
        top_right.append(institution)
    if study_date:
        top_right.append(study_date)
    if study_desc:
        top_right.append(study_desc)
    if accession and not anonymise:
        top_right.append(f"Acc {accession}")

    bottom_left: list[str] = []
    kind = "  ".join(p for p in (modality, body_part, view_position) if p)
    if kind:
        bottom_left.append(kind)
    if series_desc:
        bottom_left.append(series_desc)
    if view.width and view.height:
        bottom_left.append(f"{view.width} × {view.height}")
    if view.frame_count > 1:
        bottom_left.append(f"Frame {view.frame_index + 1}/{view.frame_count}")

    bottom_right: list[str] = []
    orientation = []
    if view.rotation_degrees:
        orientation.append(f"Rot {view.rotation_degrees}°")
    if view.flipped:
        orientation.append("Flipped")
    if view.inverted:
        orientation.append("Inverted")
    if orientation:
        bottom_right.append("  ".join(orientation))
    if view.window is not None:
        bottom_right.append(f"C {format_number(view.window.center)}  W {format_number(view.window.width)}")
    bottom_right.append(f"Zoom {view.zoom * 100:.0f}%")

    return CornerText(tuple(top_left), tuple(top_right), tuple(bottom_left), tuple(bottom_right))


_CORNERS = (("top_left", False, False), ("top_right", True, False),
            ("bottom_left", False, True), ("bottom_right", True, True))
HALO_PX = 1.0      # the dark halo reaches this far around each glyph


def _lines_placed(rect: QRectF, text: CornerText, metrics: QFontMetricsF,
                  margin: float) -> Iterator[tuple[str, str, QPointF]]:
    """(corner, line, baseline origin) for every line of `text` in the corners of `rect`."""
    line_height = metrics.lineSpacing()
    for corner, right, bottom in _CORNERS:
        lines: tuple[str, ...] = getattr(text, corner)
        count = len(lines)
        for i, line in enumerate(lines):
            x = rect.right() - margin - metrics.horizontalAdvance(line) if right else rect.left() + margin
            if bottom:
                baseline = rect.bottom() - margin - (count - 1 - i) * line_height - metrics.descent()
            else:
                baseline = rect.top() + margin + i * line_height + metrics.ascent()
            yield corner, line, QPointF(x, baseline)


def corner_text_bounds(rect: QRectF, text: CornerText, font: QFont, margin: float = 8.0) -> dict[str, QRectF]:
    """Where `paint_corner_text` draws each non-empty corner (halo included): corner name → its rectangle.
    Widgets over the image (the heat-map legend) keep clear of these."""
    metrics = QFontMetricsF(font)
    bounds: dict[str, QRectF] = {}
    for corner, line, origin in _lines_placed(rect, text, metrics, margin):
        box = QRectF(origin.x(), origin.y() - metrics.ascent(), metrics.horizontalAdvance(line), metrics.height())
        box = box.adjusted(-HALO_PX, -HALO_PX, HALO_PX + 1, HALO_PX + 1)
        bounds[corner] = bounds[corner].united(box) if corner in bounds else box
    return bounds


def paint_corner_text(painter: QPainter, rect: QRectF, text: CornerText, font: QFont, margin: float = 8.0) -> None:
    """Draw `text` in the corners of `rect` (viewport coordinates) with a dark halo."""
    painter.save()
    painter.setFont(font)
    halo = QColor(0, 0, 0, 200)
    ink = QColor(235, 235, 235)
    for _corner, line, origin in _lines_placed(rect, text, QFontMetricsF(font), margin):
        painter.setPen(halo)
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)):
            painter.drawText(origin + QPointF(dx, dy), line)
        painter.setPen(ink)
        painter.drawText(origin, line)
    painter.restore()


def corner_font(base: QFont, pixel_size: int = 13) -> QFont:
    """The overlay font: the application's (bundled) family at a fixed pixel size."""
    font = QFont(base)
    font.setPixelSize(pixel_size)
    font.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return font


__all__ = [
    "ANONYMISED_PLACEHOLDER",
    "IDENTIFYING_KEYS",
    "CornerText",
    "ViewState",
    "build_corner_text",
    "corner_font",
    "corner_text_bounds",
    "format_date",
    "format_number",
    "format_person_name",
    "paint_corner_text",
]
