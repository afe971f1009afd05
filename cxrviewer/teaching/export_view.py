"""What an exported picture is, so it can be reproduced: the sidecar JSON and the PDF case report.

A view export is a PNG of the canvas as shown plus `<name>.json` beside it (`build_sidecar`):
the image's SHA-256 and frame, the window, orientation and zoom, the model's name and
weights SHA-256, the heat map's method, layer, class, threshold and colour settings, the
probabilities, and the app version. The sidecar never holds patient data: no file path or
name, no DICOM header value — the image is identified by the hash of its bytes only.
`sidecar_json` double-checks the JSON against the image's identifying header values before
anything is written: whole values (a full name, an ID, a birth date) anywhere refuse the
export; single name parts only outside the sections written from constants and the model
card, so a patient whose name part is also a label or a colour map ("Viral", "Jet") can
still be exported. Placeholder names left by de-identification ("Anonymous") are not
identifiers.

The case report is one A4 page drawn with matplotlib's Agg/PDF backends (no Qt, no pyplot
state): the view image, the probabilities, the heat-map settings, the trainee's call and
the reveal comparison, warnings, and the provenance lines.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__
from cxrviewer.core.errors import CxrError
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.types import OodVerdict, Prediction, Window, XrayImage
from cxrviewer.core.xai.cam import METHOD_LABELS
from cxrviewer.teaching.pages import save_page
from cxrviewer.teaching.reads import ReadCall, RevealComparison

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from cxrviewer.core.xai.audit import AuditResult

TEXT_BOTTOM = 0.03          # page fractions of the case report's text block
LINE_HEIGHT = 0.0148        # one 8.5 pt line at 1.45 spacing on A4
AUDIT_NOT_RUN = "Explanation audit: not run (Tools › Sanity check)"

SIDECAR_SCHEMA = "cxrviewer.view-export"
SIDECAR_SCHEMA_VERSION = 1

# DICOM keywords whose values identify a person or place (kept in step with the UI's
# corner-text list; core may not import the UI).
IDENTIFYING_KEYS: frozenset[str] = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "OtherPatientNames",
    "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "StationName", "StudyID",
})
_MIN_IDENTIFIER_LENGTH = 3    # shorter fragments ("F", "01") would match everywhere
# What de-identification tools write instead of a name or an ID.
_PLACEHOLDERS = frozenset({
    "anon", "anonymous", "anonymised", "anonymized", "anonymous patient", "deidentified", "de-identified",
    "removed", "unknown", "none", "n/a", "patient", "test", "xxx",
})
# Sidecar sections filled only from constants, the model card and the view settings.
_NOT_FROM_THE_HEADER = frozenset({
    "schema", "schema_version", "app", "created", "notice", "model", "prediction", "overlay", "export",
    "warnings",
})


class ExportError(CxrError):
    """An export could not be written, or would have contained patient identifiers."""


@dataclass(frozen=True)
class ExportedView:
    """How the image was shown: window, polarity, orientation, zoom, visible part."""

    window: Window
    zoom: float = 1.0
    user_invert: bool = False
    rotation_degrees: int = 0
    flipped: bool = False
    visible_rect: tuple[float, float, float, float] | None = None   # x, y, w, h in image pixels
    viewport_size: tuple[int, int] | None = None                    # width, height in pixels


@dataclass(frozen=True)
class OverlayState:
    """The heat map as drawn (or not drawn) in the export."""

    method: str
    layer: str
    class_index: int
    class_label: str
    threshold: float = 0.0
    opacity: float = 0.5
    colormap: str = "jet"
    normalisation: str = "per_image"
    absolute_max: float | None = None
    visible: bool = True
    shown_below_operating_threshold: bool = False   # the trainee clicked "show anyway"


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


class SidecarRecord(TypedDict, total=False):
    """What a sidecar records besides the image and the view: `build_sidecar`'s (and the GUI's
    `canvas_sidecar`'s) optional keywords, each None or absent when there is none."""

    card: ModelCard | None
    prediction: Prediction | None
    overlay: OverlayState | None
    read_first_state: str | None          # the read-first flow's export state ("revealed", …)
    warnings: Sequence[str] | None        # the "unlike the training data" warnings the case report prints


def build_sidecar(
    image: XrayImage,
    view: ExportedView,
    *,
    anonymised: bool = True,
    corner_text: str = "anonymised",
    created: str | None = None,
    app_version: str = __version__,
    **record: Unpack[SidecarRecord],
) -> dict[str, Any]:
    """The provenance record of one exported view (JSON-ready dict; no patient data)."""
    card, prediction, overlay = record.get("card"), record.get("prediction"), record.get("overlay")
    read_first_state, warnings = record.get("read_first_state"), record.get("warnings")
    height, width = image.shape
    sidecar: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "schema_version": SIDECAR_SCHEMA_VERSION,
        "app": {"name": "cxrviewer", "version": app_version},
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notice": NOT_FOR_CLINICAL_USE,
        "image": {
            "sha256": image.sha256,
            "frame_index": int(image.frame_index),
            "frame_count": int(image.frame_count),
            "width": int(width),
            "height": int(height),
            "photometric": image.photometric,
            "invert_for_display": bool(image.invert_for_display),
        },
        "view": {
            "window": {"center": _round(view.window.center), "width": _round(view.window.width)},
            "user_invert": bool(view.user_invert),
            "rotation_degrees": int(view.rotation_degrees),
            "flipped_horizontally_before_rotation": bool(view.flipped),
            "zoom": _round(view.zoom),
            "visible_rect": None if view.visible_rect is None else [_round(v, 2) for v in view.visible_rect],
            "viewport_size": None if view.viewport_size is None else [int(v) for v in view.viewport_size],
        },
        "model": None,
        "prediction": None,
        "overlay": None,
        "export": {"anonymised": bool(anonymised), "corner_text": corner_text},
    }
    if read_first_state is not None:
        sidecar["export"]["read_first"] = read_first_state
    if warnings:   # the same "unlike the training data" warnings the case report prints
        sidecar["warnings"] = [str(w) for w in warnings]
    if card is not None:
        sidecar["model"] = {
            "name": card.name,
            "weights_file": card.weights_file,
            "weights_sha256": card.weights_sha256,
            "backbone": card.backbone,
            "input_size": card.input_size,
            "labels": list(card.labels),
            "temperature": _round(card.temperature),
            "operating_threshold": _round(card.operating_threshold),
        }
    if prediction is not None:
        sidecar["prediction"] = {
            "model_name": prediction.model_name,
            "probabilities": {label: _round(p) for label, p in zip(prediction.labels, prediction.probabilities)},
            "top_label": prediction.top_label,
            # the out-of-distribution gate's verdict; a flagged image's result was shown only on request
            "out_of_distribution": prediction.ood.as_json() if prediction.ood is not None else None,
        }
        if card is not None:   # the model's call by the card's rule: what the panel and the reveal said
            from cxrviewer.core.model_call import model_call

            sidecar["prediction"]["call"] = model_call(prediction.labels, prediction.probabilities,
                                                       card.operating_threshold).as_json()
    if overlay is not None:
        sidecar["overlay"] = {
            "visible": bool(overlay.visible),
            "method": overlay.method,
            "method_label": METHOD_LABELS.get(overlay.method, overlay.method),
            "layer": overlay.layer,
            "class_index": int(overlay.class_index),
            "class_label": overlay.class_label,
            "threshold": _round(overlay.threshold),
            "opacity": _round(overlay.opacity),
            "colormap": overlay.colormap,
            "normalisation": overlay.normalisation,
            "absolute_max": None if overlay.absolute_max is None else _round(overlay.absolute_max),
            "shown_below_operating_threshold": bool(overlay.shown_below_operating_threshold),
        }
    return sidecar


def sidecar_path(png_path: str | Path) -> Path:
    """`view.png` → `view.json`."""
    return Path(png_path).with_suffix(".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_caption(sidecar: Mapping[str, Any]) -> str:
    """One line drawn under an exported view: the probabilities and the map's settings.

    A heat map never leaves the viewer without its class probability beside it.
    """
    parts: list[str] = []
    prediction = sidecar.get("prediction")
    overlay = sidecar.get("overlay")
    if prediction:
        probabilities = prediction["probabilities"]
        ordered = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
        parts.append(", ".join(f"{label} {p * 100:.1f} %" for label, p in ordered))
        ood = prediction.get("out_of_distribution") or {}
        if ood.get("flagged"):
            parts.append(f"OUTSIDE THE MODEL'S TRAINING DATA, shown anyway: {ood.get('reason', '')}")
    if overlay and overlay.get("visible", True):
        shown = (prediction or {}).get("probabilities", {}).get(overlay["class_label"])
        p_text = "" if shown is None else f" (p = {shown:.2f})"
        scale = "absolute scale" if overlay.get("normalisation") == "absolute" else "per-image scale"
        parts.append(f"{overlay['method_label']} for {overlay['class_label']}{p_text}, layer {overlay['layer']}, "
                     f"threshold {overlay['threshold']:.2f}, {scale}")
    elif overlay:
        parts.append("heat map hidden")
    if sidecar.get("export", {}).get("read_first") == "before reveal":
        parts.append("AI result hidden until the trainee's call (read first)")
    model = sidecar.get("model")
    if model:
        parts.append(f"model {model['name']}")
    parts.append(NOT_FOR_CLINICAL_USE.lower())
    return " · ".join(parts)


# ----------------------------------------------------------------------- identifiers

_PERSON_NAME_KEYS = frozenset({
    "PatientName", "OtherPatientNames", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
})


def identifier_values(metadata: Mapping[str, Any], name_parts: bool = True) -> set[str]:
    """Identifying header values, dates in both spellings; person names also by part."""
    values: set[str] = set()
    for key in IDENTIFYING_KEYS:
        raw = str(metadata.get(key, "") or "").strip()
        if not raw:
            continue
        values.add(raw)
        if name_parts and key in _PERSON_NAME_KEYS:
            values.update(re.split(r"[\s^,=\\]+", raw))
        digits = raw.replace("-", "")
        if len(digits) == 8 and digits.isdigit():
            values.update({digits, f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"})
    return {v for v in values if len(v) >= _MIN_IDENTIFIER_LENGTH and v.lower() not in _PLACEHOLDERS}


def find_identifiers(text: str, metadata: Mapping[str, Any], name_parts: bool = True) -> list[str]:
    """Identifying header values that occur in `text` as whole words (case-insensitive).

    Whole words, so an ID's digits inside a SHA-256 hex string do not count as a match.
    """
    found = [
        value for value in identifier_values(metadata, name_parts)
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text, re.IGNORECASE)
    ]
    return sorted(found, key=len, reverse=True)


def sidecar_json(sidecar: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> str:
    """Serialise; refuse (ExportError) if an identifying header value slipped in (see the module doc)."""
    text = json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n"
    if metadata is not None:
        reachable = {key: value for key, value in sidecar.items() if key not in _NOT_FROM_THE_HEADER}
        found = set(find_identifiers(text, metadata, name_parts=False))
        found.update(find_identifiers(json.dumps(reachable, ensure_ascii=False), metadata))
        if found:
            raise ExportError(f"the export record would contain patient identifiers ({len(found)} found); not written")
    return text


def write_sidecar(path: str | Path, sidecar: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Path:
    path = Path(path)
    text = sidecar_json(sidecar, metadata)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"{path.name}: could not be written ({exc.strerror or exc})") from exc
    return path


# ----------------------------------------------------------------------- case report

@dataclass(frozen=True)
class CaseReport:
    """Everything on the one-page report. `view_rgb` is the view as exported (anonymised)."""

    view_rgb: np.ndarray
    sidecar: Mapping[str, Any]
    call: ReadCall | None = None
    comparison: RevealComparison | None = None
    warnings: tuple[str, ...] = ()
    title: str = "cxrviewer case report"
    notes: tuple[str, ...] = field(default_factory=tuple)
    audit: AuditResult | None = None      # the explanation audit of the map on screen, when it was run


def _readable_time(iso: str) -> str:
    """'2026-01-02T03:04:05+00:00' → '2026-01-02 03:04 UTC' (unchanged when not ISO)."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.utcoffset() is not None:
        moment = moment.astimezone(timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


def _percent(p: float) -> str:
    return f"{p * 100:.1f} %"


def _shown_anyway_line(sidecar: Mapping[str, Any]) -> list[str]:
    """'  Shown anyway — Outside what <model> knows: …' when the view shows a flagged image's result
    (the wording is the viewer's gate line: `OodVerdict.shown_anyway_message`)."""
    prediction = sidecar.get("prediction") or {}
    ood = prediction.get("out_of_distribution") or {}
    if not ood.get("flagged"):
        return []
    verdict = OodVerdict(True, ood.get("score"), ood.get("threshold"), str(ood.get("reason", "")))
    return [f"  {verdict.shown_anyway_message(str(prediction.get('model_name', '')))}"]


def _overlay_lines(sidecar: Mapping[str, Any]) -> list[str]:
    overlay = sidecar.get("overlay")
    if not overlay:
        return ["Heat map: none"]
    scale = ("absolute scale 0–" + f"{overlay['absolute_max']:.3g}"
             if overlay.get("normalisation") == "absolute" and overlay.get("absolute_max") else "per-image scale")
    probability = (sidecar.get("prediction") or {}).get("probabilities", {}).get(overlay["class_label"])
    shown_p = "" if probability is None else f" (probability {_percent(float(probability))})"
    visible = overlay.get("visible", True)
    lines = [
        f"Heat map: {overlay['method_label']} for {overlay['class_label']}{shown_p}, layer {overlay['layer']}",
        *(_shown_anyway_line(sidecar) if visible else ()),
        f"  threshold {overlay['threshold']:.2f}, opacity {overlay['opacity']:.2f}, {overlay['colormap']}, {scale}",
    ]
    if not visible:
        lines.append("  (hidden in this view)")
    elif overlay.get("shown_below_operating_threshold"):
        lines.append("  shown although the class probability is below the model's operating threshold")
    return lines


def _call_lines(report: CaseReport) -> list[str]:
    comparison, call = report.comparison, report.call or (report.comparison.call if report.comparison else None)
    if call is None:
        return ["Trainee call: not recorded"]
    lines = [f"Trainee call: {call.title}, confidence {call.confidence} %"]
    sidecar = report.sidecar
    if call.point is not None:
        lines.append(f"  region of concern marked at x {call.point[0]:.0f}, y {call.point[1]:.0f} (image pixels)")
    if comparison is not None:
        agree = comparison.agrees_with_model
        if agree is not None:
            decided = comparison.model_call
            lines.append(f"  {'agrees with' if agree else 'differs from'} the model's call "
                         f"({decided.label}: {decided.reason})")
            if comparison.model_name == (sidecar.get("prediction") or {}).get("model_name"):
                lines += _shown_anyway_line(sidecar)
        inside = comparison.point_in_hot_region
        if inside is not None:
            lines.append(f"  marked point {'inside' if inside else 'outside'} the hot region "
                         f"(map {comparison.point_heat:.2f} vs hot level {comparison.hot_threshold:.2f})")
        if comparison.known_label:
            verdict = "matches" if comparison.agrees_with_known_label else "does not match"
            lines.append(f"  known label of the folder: {comparison.known_label} — the call {verdict} it")
    return lines


def method_pair_label(pair: str) -> str:
    """A method-agreement key of `AuditResult` ("gradcam vs hirescam") as the user reads it ("Grad-CAM vs HiResCAM")."""
    return " vs ".join(METHOD_LABELS.get(method, method) for method in pair.split(" vs "))


def audit_lines(audit: AuditResult | None, sidecar: Mapping[str, Any]) -> list[str]:
    """The explanation audit of the map in the report (core/xai/audit.py), or why there is none.

    Only an audit of the map the report shows counts (same class, method, layer); the report
    never claims an audit for another map."""
    overlay = sidecar.get("overlay")
    if not overlay:
        return []       # no map in this view (none computed, or hidden by read first): nothing to audit
    if audit is None or (audit.class_index, audit.method, audit.layer) != (
            overlay.get("class_index"), overlay.get("method"), overlay.get("layer")):
        return [AUDIT_NOT_RUN]
    method = METHOD_LABELS.get(audit.method, audit.method)
    agreement = ", ".join(f"{method_pair_label(pair)} {rho:+.2f}" for pair, rho in audit.method_agreement.items())
    return [
        f"Explanation audit of this map ({method} for {audit.class_label}, layer {audit.layer}):",
        f"  deletion curve area {audit.deletion_area:.2f} vs {audit.random_deletion_area:.2f} for a random map "
        f"(lower is better); insertion area {audit.insertion_area:.2f} vs {audit.random_insertion_area:.2f} "
        f"(higher is better)",
        f"  method agreement (Spearman rank correlation at this layer): {agreement or 'not computed'}",
        f"  {audit.verdict()}",
    ]


def case_report_figure(report: CaseReport) -> Any:
    """A matplotlib Figure (A4 portrait) of the report; no pyplot, no GUI backend."""
    from matplotlib.figure import Figure

    sidecar = report.sidecar
    figure = Figure(figsize=(8.27, 11.69), dpi=100)
    figure.text(0.06, 0.965, report.title, fontsize=16, weight="bold", va="top")
    figure.text(0.06, 0.94, NOT_FOR_CLINICAL_USE, fontsize=9.5, color="#a33", va="top")
    figure.text(0.94, 0.965, _readable_time(str(sidecar.get("created", ""))), fontsize=8, color="#555",
                ha="right", va="top")

    lines: list[str] = []
    lines += _call_lines(report)
    lines.append("")
    lines += _overlay_lines(sidecar)
    lines += audit_lines(report.audit, sidecar)
    model = sidecar.get("model")
    if model:
        lines.append(f"Model: {model['name']} ({model['backbone']}, {model['input_size']} px), "
                     f"operating threshold {model['operating_threshold']:.2f}")
        lines.append(f"  weights sha256 {model['weights_sha256']}")
    for warning in report.warnings:
        lines.append(f"Warning: {warning}")
    for note in report.notes:
        lines.append(note)
    image = sidecar.get("image", {})
    view = sidecar.get("view", {})
    window = view.get("window", {})
    lines.append("")
    lines.append(f"Image sha256 {image.get('sha256', '')}, frame {int(image.get('frame_index', 0)) + 1}")
    lines.append(f"Window C {window.get('center', 0):.6g} / W {window.get('width', 0):.6g}, "
                 f"zoom {float(view.get('zoom', 1.0)) * 100:.0f} %, rotation {view.get('rotation_degrees', 0)}°"
                 f"{', flipped' if view.get('flipped_horizontally_before_rotation') else ''}"
                 f"{', inverted' if view.get('user_invert') else ''}")
    lines.append(f"cxrviewer {sidecar.get('app', {}).get('version', '')}; "
                 f"{'identifiers hidden' if sidecar.get('export', {}).get('anonymised') else 'identifiers as shown'}")
    text = "\n".join(_wrap(line, 110) for line in lines)
    # the text block grows upwards when it is long (a call, a comparison, warnings, the audit): the
    # view shrinks, nothing runs off the page
    text_top = max(0.27, TEXT_BOTTOM + (text.count("\n") + 1) * LINE_HEIGHT)
    image_axes = figure.add_axes((0.06, text_top + 0.17, 0.88, 0.92 - (text_top + 0.17)))
    image_axes.imshow(np.asarray(report.view_rgb), interpolation="antialiased")
    image_axes.set_axis_off()

    prediction = sidecar.get("prediction")
    bars = figure.add_axes((0.2, text_top + 0.03, 0.5, 0.11))
    if prediction:
        labels = list(prediction["probabilities"])
        values = [float(prediction["probabilities"][k]) for k in labels]
        top = labels[int(np.argmax(values))]
        colours = ["#c0392b" if label == top else "#7f8c8d" for label in labels]
        bars.barh(labels[::-1], values[::-1], color=colours[::-1])
        for y, value in enumerate(values[::-1]):
            bars.text(min(value + 0.02, 0.88), y, _percent(value), va="center", fontsize=8.5)
        bars.set_xlim(0, 1)
        bars.set_title(f"Model probabilities — {prediction['model_name']}", fontsize=9.5, loc="left")
        bars.tick_params(labelsize=8.5)
        bars.spines[["top", "right"]].set_visible(False)
    else:
        bars.set_axis_off()
        bars.text(0, 0.5, "No model result in this view", fontsize=9.5)

    figure.text(0.06, text_top, text, fontsize=8.5, va="top", family="DejaVu Sans", linespacing=1.45)
    return figure


def _wrap(line: str, width: int) -> str:
    import textwrap

    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.fill(line, width=width, subsequent_indent=indent + "  ") if len(line) > width else line


def write_case_report(report: CaseReport, path: str | Path, dpi: int = 150) -> Path:
    """Write the report as PDF (or PNG/SVG by the suffix). Raises ExportError naming the file."""
    return save_page(case_report_figure(report), Path(path), report.title, "case report", ExportError, dpi)


__all__: Sequence[str] = (
    "AUDIT_NOT_RUN", "CaseReport", "ExportError", "audit_lines", "ExportedView", "OverlayState", "build_sidecar", "case_report_figure",
    "find_identifiers", "identifier_values", "sha256_bytes", "sidecar_json", "sidecar_path",
    "write_case_report", "write_sidecar",
)
