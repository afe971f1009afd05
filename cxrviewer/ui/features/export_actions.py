"""File ▸ Export: the view as shown to PNG (+ sidecar JSON), to the clipboard, or as a PDF case report.

"As shown" means the canvas viewport — window, zoom, pan, rotation, overlay and all — grabbed
from the widget. With anonymise on, the corner text is drawn anonymised for the grab (names,
IDs, birth dates, accession numbers and institution hidden), whatever the screen shows;
`corner_text="none"` renders the scene without any corner text. A caption band with the
probabilities and heat-map settings is added under the picture, so a map is never exported
without its probability. The sidecar JSON is checked for identifying header values before
anything is written (`teaching.export_view.sidecar_json`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QGuiApplication, QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QWidget

from cxrviewer.teaching.export_view import (
    CaseReport,
    ExportedView,
    ExportError,
    SidecarRecord,
    build_sidecar,
    export_caption,
    sha256_bytes,
    sidecar_json,
    sidecar_path,
    write_case_report,
)
from cxrviewer.teaching.pages import page_path
from cxrviewer.teaching.reads import ReadCall, RevealComparison
from cxrviewer.ui.viewer.canvas import ImageCanvas, orientation_summary

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from cxrviewer.core.xai.audit import AuditResult

CORNER_TEXT_MODES = ("anonymised", "none", "as_shown")
CAPTION_PIXEL_SIZE = 12


@dataclass(frozen=True)
class ExportResult:
    png: Path
    sidecar: Path
    size: tuple[int, int]


# ------------------------------------------------------------------------ reading the view

def exported_view(canvas: ImageCanvas) -> ExportedView:
    """Window, zoom, invert, orientation and the visible image rectangle of `canvas`."""
    window = canvas.window()
    if canvas.image() is None or window is None:
        raise ExportError("there is no image to export")
    rotation, flipped = orientation_summary(canvas.orientation())
    viewport = canvas.viewport().rect()
    corners = [canvas.viewport_to_image(QPointF(x, y))
               for x, y in ((0, 0), (viewport.width(), 0), (0, viewport.height()),
                            (viewport.width(), viewport.height()))]
    height, width = canvas.image().shape
    left = max(0.0, min(p.x() for p in corners))
    top = max(0.0, min(p.y() for p in corners))
    right = min(float(width), max(p.x() for p in corners))
    bottom = min(float(height), max(p.y() for p in corners))
    return ExportedView(
        window=window,
        zoom=canvas.zoom(),
        user_invert=canvas.is_inverted(),
        rotation_degrees=rotation,
        flipped=flipped,
        visible_rect=(left, top, max(right - left, 0.0), max(bottom - top, 0.0)),
        viewport_size=(viewport.width(), viewport.height()),
    )


def canvas_sidecar(canvas: ImageCanvas, *, anonymise: bool, **record: Unpack[SidecarRecord]) -> dict[str, Any]:
    """`build_sidecar` for the image and view of `canvas` (see teaching.export_view); `record`:
    the model card, prediction, overlay, read-first state and warnings it also records."""
    image = canvas.image()
    if image is None:
        raise ExportError("there is no image to export")
    return build_sidecar(image, exported_view(canvas), anonymised=anonymise,
                         corner_text="anonymised" if anonymise else "as_shown", **record)


# ------------------------------------------------------------------------ grabbing

def grab_view(canvas: ImageCanvas, corner_text: str = "anonymised") -> QImage:
    """The viewport as shown, with the corner text anonymised, left out, or as on screen."""
    if corner_text not in CORNER_TEXT_MODES:
        raise ValueError(f"corner_text must be one of {', '.join(CORNER_TEXT_MODES)}")
    canvas.flush_render()
    if corner_text == "none":
        viewport = canvas.viewport()
        ratio = viewport.devicePixelRatioF() or 1.0
        image = QImage(round(viewport.width() * ratio), round(viewport.height() * ratio),
                       QImage.Format.Format_RGB32)
        image.setDevicePixelRatio(ratio)
        image.fill(canvas.backgroundBrush().color())
        source = canvas.mapToScene(viewport.rect()).boundingRect()
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        canvas.scene().render(painter, QRectF(0, 0, viewport.width(), viewport.height()), source,
                              Qt.AspectRatioMode.IgnoreAspectRatio)
        painter.end()
        return image
    previous = canvas.is_anonymised()
    if corner_text == "anonymised":
        canvas.set_anonymise(True)
    try:
        return canvas.viewport().grab().toImage()
    finally:
        canvas.set_anonymise(previous)


def add_caption(image: QImage, caption: str, font: QFont | None = None) -> QImage:
    """`image` with a dark band below it holding `caption` (word-wrapped)."""
    if not caption:
        return image
    font = QFont(font or QGuiApplication.font())
    font.setPixelSize(CAPTION_PIXEL_SIZE)
    ratio = image.devicePixelRatio() or 1.0
    width = round(image.width() / ratio)
    metrics = QFontMetrics(font)
    text_rect = metrics.boundingRect(0, 0, width - 16, 10_000, Qt.TextFlag.TextWordWrap, caption)
    band = text_rect.height() + 12
    out = QImage(image.width(), image.height() + round(band * ratio), QImage.Format.Format_RGB32)
    out.setDevicePixelRatio(ratio)
    out.fill(QColor(24, 24, 24))
    painter = QPainter(out)
    painter.drawImage(0, 0, image)
    painter.setFont(font)
    painter.setPen(QColor(230, 230, 230))
    painter.drawText(QRectF(8, image.height() / ratio + 6, width - 16, band - 12),
                     Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, caption)
    painter.end()
    return out


def corner_text_mode(anonymise: bool, corner_text: str | None = None) -> str:
    """The corner text an export gets: as asked, except that anonymise always wins over "as_shown"."""
    mode = corner_text or ("anonymised" if anonymise else "as_shown")
    return "anonymised" if anonymise and mode == "as_shown" else mode


def view_image(canvas: ImageCanvas, sidecar: Mapping[str, Any] | None, *, anonymise: bool,
               corner_text: str | None = None, caption: bool = True) -> QImage:
    """The picture every export uses: the grabbed view plus (optionally) its caption band."""
    image = grab_view(canvas, corner_text_mode(anonymise, corner_text))
    if caption and sidecar is not None:
        image = add_caption(image, export_caption(sidecar))
    return image


def qimage_to_rgb(image: QImage) -> np.ndarray:
    converted = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = converted.width(), converted.height(), converted.bytesPerLine()
    buffer = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def _metadata(canvas: ImageCanvas) -> Mapping[str, Any]:
    image = canvas.image()
    return image.metadata if image is not None else {}


# ------------------------------------------------------------------------ the three exports

def export_view_png(canvas: ImageCanvas, path: str | Path, sidecar: Mapping[str, Any], *, anonymise: bool,
                    corner_text: str | None = None, caption: bool = True) -> ExportResult:
    """Save the view as PNG and its sidecar JSON (`<name>.json`). Raises ExportError.

    The sidecar is validated (no identifying header values) before either file is written.
    """
    path = page_path(path, (".png",))
    image = view_image(canvas, sidecar, anonymise=anonymise, corner_text=corner_text, caption=caption)
    record = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in sidecar.items()}
    record["export"] = {
        **dict(sidecar.get("export") or {}),
        "anonymised": bool(anonymise),
        "corner_text": corner_text_mode(anonymise, corner_text),
        "caption": bool(caption),
        "png_size": [image.width(), image.height()],
    }
    sidecar_json(record, _metadata(canvas))          # refuse before writing anything
    if not image.save(str(path), "PNG"):
        raise ExportError(f"{path.name}: could not be written (check the folder exists and is writable)")
    record["export"]["png_sha256"] = sha256_bytes(path.read_bytes())
    json_path = sidecar_path(path)
    try:
        json_path.write_text(sidecar_json(record, _metadata(canvas)), encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{json_path.name}: could not be written ({exc.strerror or exc})") from exc
    return ExportResult(path, json_path, (image.width(), image.height()))


def copy_view_to_clipboard(
    canvas: ImageCanvas, sidecar: Mapping[str, Any] | None = None, *, anonymise: bool, caption: bool = True
) -> QImage:
    """Put the view (as exported) on the clipboard; returns the image."""
    image = view_image(canvas, sidecar, anonymise=anonymise, caption=caption)
    QGuiApplication.clipboard().setImage(image)
    return image


def export_pdf(
    canvas: ImageCanvas,
    path: str | Path,
    sidecar: Mapping[str, Any],
    *,
    anonymise: bool,
    call: ReadCall | None = None,
    comparison: RevealComparison | None = None,
    warnings: Sequence[str] = (),
    audit: AuditResult | None = None,
) -> Path:
    """A one-page PDF case report: the view, probabilities, heat-map settings, the trainee's call, and the
    explanation audit of the map on screen when it was run (`shown_audit`)."""
    path = page_path(path)
    sidecar_json(sidecar, _metadata(canvas))          # the report's provenance lines come from it
    rgb = qimage_to_rgb(view_image(canvas, None, anonymise=anonymise, caption=False))
    report = CaseReport(view_rgb=rgb, sidecar=sidecar, call=call, comparison=comparison,
                        warnings=tuple(warnings), audit=audit)
    return write_case_report(report, path)


def shown_audit(session: Any) -> AuditResult | None:
    """The explanation audit already computed for the map the AI session shows (Tools › Sanity check
    caches it in the inference service), else None. Never starts one."""
    cam, image = session.shown_cam(), session.image
    cached = getattr(session.engine, "cached_audit", None)
    if cam is None or image is None or cached is None or cam.image_key != session.current_key():
        return None
    outcome = cached(image, cam.class_index, cam.method, cam.layer)
    return outcome.result if outcome is not None else None


# ------------------------------------------------------------------------ file dialogs

def ask_export_path(parent: QWidget | None, kind: str, folder: str | Path = "", name: str = "view") -> Path | None:
    """A save dialog for 'png' or 'pdf'; None when cancelled."""
    filters = {"png": "PNG image (*.png)", "pdf": "PDF case report (*.pdf)"}
    title = {"png": "Export View", "pdf": "Export Case Report"}[kind]
    suggested = str(Path(folder) / f"{name}.{kind}") if folder else f"{name}.{kind}"
    chosen, _ = QFileDialog.getSaveFileName(parent, title, suggested, filters[kind])
    return Path(chosen) if chosen else None
