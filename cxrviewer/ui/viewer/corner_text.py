"""Text drawn in the four corners of the image view, and the anonymised variant of it.

`build_corner_text` is pure (testable without painting); `layout_corner_text` fits it to the pane
(on a narrow one the left and right blocks share the width, lines elided with "…"; on a short one the
last lines go) and places every line; `paint_corner_text` draws that layout in viewport coordinates
with a dark halo so it stays legible over bright lung fields, and `corner_text_bounds` reports it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
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


# The header fields a blinded corner text (a practice packet) still shows: technical, never free text.
BLINDED_KEEP_KEYS = ("Modality", "modality", "BodyPartExamined", "body_part_examined", "ViewPosition", "view_position")


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
    metadata: Mapping[str, str], view: ViewState, *, anonymise: bool, title: str = "", blinded: bool = False
) -> CornerText:
    """The four corners' lines for an image's metadata and the current view; a `title` (a practice
    case's "Practice case 3 of 12") comes first, top left. `blinded` (a practice packet): no header
    field that could give the answer away — no person, place, date or description — only the title
    and the technical lines (modality, body part, view position, size, frame, window, zoom)."""
    if blinded:
        metadata = {key: metadata[key] for key in BLINDED_KEEP_KEYS if key in metadata}
        anonymise = False    # nothing identifying is left to hide, so no "Identifiers hidden" line either
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

    top_left: list[str] = [title] if title else []
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
GAP_PX = 12.0      # the least room between the left and the right block, and between the top and bottom rows
MIN_VISIBLE_CHARS = 3   # an elided line showing fewer characters than this is dropped instead


@dataclass(frozen=True)
class PlacedLine:
    """One line as `paint_corner_text` draws it: the text (elided when the pane is narrow), where its
    baseline starts (viewport coordinates) and how wide it is."""

    corner: str
    text: str
    origin: QPointF
    width: float


def _elided(lines: tuple[str, ...], budget: float, metrics: QFontMetricsF) -> tuple[str, ...]:
    """`lines` cut to `budget` pixels with "…"; a line that would keep too little of itself is dropped."""
    fitted: list[str] = []
    for line in lines:
        if metrics.horizontalAdvance(line) <= budget:
            fitted.append(line)
            continue
        elided = metrics.elidedText(line, Qt.TextElideMode.ElideRight, max(budget, 0.0))
        if len(elided.rstrip("…").strip()) >= MIN_VISIBLE_CHARS:
            fitted.append(elided)
    return tuple(fitted)


def _budgets(left: float, right: float, available: float) -> tuple[float, float]:
    """The widths the left and the right block may take side by side: their own when both fit, else each
    at least half of `available` (a block that needs less leaves the rest to the other)."""
    if left + right <= available:
        return left, right
    half = available / 2
    if left <= half:
        return left, available - left
    if right <= half:
        return available - right, right
    return half, half


def _fit_pair(left: tuple[str, ...], right: tuple[str, ...], available: float,
              metrics: QFontMetricsF) -> tuple[tuple[str, ...], tuple[str, ...]]:
    widest = [max((metrics.horizontalAdvance(line) for line in lines), default=0.0) for lines in (left, right)]
    left_budget, right_budget = _budgets(widest[0], widest[1], available)
    return _elided(left, left_budget, metrics), _elided(right, right_budget, metrics)


def fit_corner_text(text: CornerText, width: float, height: float, metrics: QFontMetricsF,
                    margin: float = 8.0) -> CornerText:
    """`text` as it fits a `width` × `height` pane: unchanged when it fits; else the left and right blocks
    share the width (lines elided with "…"), and when the top and bottom rows would meet, the last lines
    (the lines of a corner come most important first) are dropped."""
    available = width - 2 * margin - GAP_PX
    top_left, top_right = _fit_pair(text.top_left, text.top_right, available, metrics)
    bottom_left, bottom_right = _fit_pair(text.bottom_left, text.bottom_right, available, metrics)
    rows = max(0, int((height - 2 * margin - GAP_PX) // metrics.lineSpacing()))
    top = max(len(top_left), len(top_right))
    bottom = max(len(bottom_left), len(bottom_right))
    while top + bottom > rows:
        if top >= bottom:
            top -= 1
        else:
            bottom -= 1
    return CornerText(top_left[:top], top_right[:top], bottom_left[:bottom], bottom_right[:bottom])


def layout_corner_text(rect: QRectF, text: CornerText, font: QFont, margin: float = 8.0) -> tuple[PlacedLine, ...]:
    """Every line `paint_corner_text` draws in the corners of `rect`, fitted (`fit_corner_text`) and placed."""
    metrics = QFontMetricsF(font)
    fitted = fit_corner_text(text, rect.width(), rect.height(), metrics, margin)
    line_height = metrics.lineSpacing()
    placed: list[PlacedLine] = []
    for corner, right, bottom in _CORNERS:
        lines: tuple[str, ...] = getattr(fitted, corner)
        count = len(lines)
        for i, line in enumerate(lines):
            width = metrics.horizontalAdvance(line)
            x = rect.right() - margin - width if right else rect.left() + margin
            if bottom:
                baseline = rect.bottom() - margin - (count - 1 - i) * line_height - metrics.descent()
            else:
                baseline = rect.top() + margin + i * line_height + metrics.ascent()
            placed.append(PlacedLine(corner, line, QPointF(x, baseline), width))
    return tuple(placed)


def corner_text_bounds(rect: QRectF, text: CornerText, font: QFont, margin: float = 8.0) -> dict[str, QRectF]:
    """Where `paint_corner_text` draws each non-empty corner (halo included): corner name → its rectangle.
    Widgets over the image (the heat-map legend) keep clear of these."""
    metrics = QFontMetricsF(font)
    bounds: dict[str, QRectF] = {}
    for line in layout_corner_text(rect, text, font, margin):
        box = QRectF(line.origin.x(), line.origin.y() - metrics.ascent(), line.width, metrics.height())
        box = box.adjusted(-HALO_PX, -HALO_PX, HALO_PX + 1, HALO_PX + 1)
        bounds[line.corner] = bounds[line.corner].united(box) if line.corner in bounds else box
    return bounds


def paint_corner_text(painter: QPainter, rect: QRectF, text: CornerText, font: QFont, margin: float = 8.0) -> None:
    """Draw `text` in the corners of `rect` (viewport coordinates) with a dark halo."""
    painter.save()
    painter.setFont(font)
    halo = QColor(0, 0, 0, 200)
    ink = QColor(235, 235, 235)
    for line in layout_corner_text(rect, text, font, margin):
        painter.setPen(halo)
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)):
            painter.drawText(line.origin + QPointF(dx, dy), line.text)
        painter.setPen(ink)
        painter.drawText(line.origin, line.text)
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
    "PlacedLine",
    "ViewState",
    "build_corner_text",
    "corner_font",
    "corner_text_bounds",
    "fit_corner_text",
    "format_date",
    "format_number",
    "format_person_name",
    "layout_corner_text",
    "paint_corner_text",
]
