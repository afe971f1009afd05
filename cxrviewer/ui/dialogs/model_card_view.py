"""The model card, readable: intended use, data, split, metrics, limitations, shortcut risks.

`card_html` turns the card written by `trainer/export.py` into HTML for a QTextBrowser;
sections the card lacks are left out, and fields this view does not know are listed at the
end as they are, so nothing the trainer recorded is hidden. `OodBanner` is the warning
strip shown over the AI result when the image looks unlike the training data.
"""
from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.xai.cam import METHOD_LABELS
from cxrviewer.core.xai.sanity import LungHeatResult, RandomisationResult
from cxrviewer.teaching.ood import INFO, OodWarning, card_shortcut_risks
from cxrviewer.ui.widgets import make

# Fields rendered in their own sections (everything else goes to "Other fields").
_SHOWN_FIELDS = frozenset({
    "intended_use", "not_for_clinical_use", "created", "training_data", "training", "metrics",
    "known_limitations", "shortcut_warning", "shortcut_warnings", "external_checks",
})

def _style() -> str:
    """The card's HTML style in the current theme's colours (AA contrast, tests/gui/test_theme.py)."""
    from cxrviewer.ui.shell.theme import current_theme

    t = current_theme()
    return f"""
<style>
 body {{ font-size: 10pt; }}
 h2 {{ margin-bottom: 2px; }}
 h3 {{ margin-top: 14px; margin-bottom: 4px; }}
 table {{ border-collapse: collapse; }}
 td, th {{ padding: 2px 8px; }}
 th {{ text-align: left; background: {t.table_header}; color: {t.table_header_text}; }}
 .num {{ text-align: right; }}
 .muted {{ color: {t.muted}; }}
 .warn {{ color: {t.warning}; }}
 .banner {{ background: {t.banner}; color: {t.banner_text}; padding: 4px; }}
</style>
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return _e(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _pct(value: Any) -> str:
    return f"{value * 100:.1f} %" if isinstance(value, (int, float)) and not isinstance(value, bool) else _e(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{cell}</td>" if i else f"<td>{cell}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table border='1' cellspacing='0'><tr>{head}</tr>{body}</table>"


def _section_data(training: Mapping[str, Any]) -> str:
    parts = ["<h3>Training data</h3>"]
    sources = training.get("sources")
    if isinstance(sources, Mapping) and sources:
        parts.append("<ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in sources.items()) + "</ul>")
    elif sources:
        parts.append(f"<p>{_e(sources)}</p>")
    if training.get("split"):
        parts.append(f"<p><b>Split:</b> {_e(training['split'])}</p>")
    counts = training.get("split_counts")
    if isinstance(counts, Mapping) and counts:
        total = sum(int(v) for v in counts.values() if isinstance(v, (int, float)))
        rows = [[_e(k), _number(v)] for k, v in counts.items()]
        if total:
            rows.append(["<b>total</b>", f"<b>{total}</b>"])
        parts.append(_table(("split", "images"), rows))
    if training.get("integrity"):
        parts.append(f"<p class='muted'>{_e(training['integrity'])}</p>")
    return "".join(parts)


def _per_class_table(per_class: Mapping[str, Any]) -> str:
    rows = []
    for label, values in per_class.items():
        if not isinstance(values, Mapping):
            continue
        rows.append([
            f"<b>{_e(label)}</b>",
            _number(values.get("precision")), _number(values.get("recall")), _number(values.get("f1")),
            _number(values.get("auc_ovr")), _number(values.get("support")),
        ])
    return _table(("class", "precision", "recall (sensitivity)", "F1", "AUC (one vs rest)", "images"), rows)


def _confusion_table(matrix: Sequence[Sequence[Any]], labels: Sequence[str]) -> str:
    if not matrix or len(matrix) != len(labels):
        return ""
    header = ["true ↓ / predicted →", *labels]
    rows = [[f"<b>{_e(label)}</b>", *(_number(v) for v in row)] for label, row in zip(labels, matrix)]
    return "<p><b>Confusion matrix</b> (test split)</p>" + _table(header, rows)


def _binary_table(title: str, values: Mapping[str, Any]) -> str:
    rows = []
    for key, name in (("threshold", "threshold"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
                      ("accuracy", "accuracy"), ("auc", "AUC"), ("n_positive", "pneumonia images"),
                      ("n_negative", "normal images")):
        if key in values:
            rows.append([name, _number(values[key])])
    return f"<p><b>{_e(title)}</b></p>" + _table(("measure", "value"), rows) if rows else ""


def _section_metrics(metrics: Mapping[str, Any], labels: Sequence[str]) -> str:
    parts = ["<h3>Performance</h3>"]
    if metrics.get("evaluated_on"):
        split = f" (split: {_e(metrics['split'])})" if metrics.get("split") else ""
        parts.append(f"<p><b>Evaluated on:</b> {_e(metrics['evaluated_on'])}{split}</p>")
    test = metrics.get("test")
    if isinstance(test, Mapping):
        summary = []
        if "n" in test:
            summary.append(f"{_number(test['n'])} test images")
        if "accuracy" in test:
            summary.append(f"accuracy {_pct(test['accuracy'])}")
        if "macro_f1" in test:
            summary.append(f"macro F1 {_number(test['macro_f1'])}")
        if "macro_auc_ovr" in test:
            summary.append(f"macro AUC {_number(test['macro_auc_ovr'])}")
        if summary:
            parts.append(f"<p>{', '.join(summary)}</p>")
        if isinstance(test.get("per_class"), Mapping):
            parts.append(_per_class_table(test["per_class"]))
        if isinstance(test.get("confusion_matrix"), list):
            parts.append(_confusion_table(test["confusion_matrix"], labels))
    binary = metrics.get("pneumonia_vs_normal")
    if isinstance(binary, Mapping):
        parts.append(_binary_table("Pneumonia vs normal at the operating threshold", binary))
    if isinstance(metrics.get("pneumonia_vs_normal_at_0.5"), Mapping):
        parts.append(_binary_table("Pneumonia vs normal at 0.5", metrics["pneumonia_vs_normal_at_0.5"]))
    if "bacterial_vs_viral_auc" in metrics:
        parts.append(f"<p><b>Bacterial vs viral AUC:</b> {_number(metrics['bacterial_vs_viral_auc'])}</p>")
    calibration = metrics.get("calibration")
    if isinstance(calibration, Mapping):
        items = [f"{_e(k.replace('_', ' '))} {_number(v)}" for k, v in calibration.items()]
        parts.append(f"<p><b>Calibration (expected calibration error):</b> {', '.join(items)}</p>")
    test_n = test.get("n") if isinstance(test, Mapping) else None
    if isinstance(test_n, int) and test_n < 100:
        parts.append(f"<p class='warn'>Only {test_n} test images: these numbers are rough estimates "
                     "with wide uncertainty.</p>")
    return "".join(parts) if len(parts) > 1 else ""


def _section_training(training: Mapping[str, Any]) -> str:
    rows = []
    for key, value in training.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        rows.append([_e(key.replace("_", " ")), _e(value)])
    return "<h3>Training</h3>" + _table(("setting", "value"), rows) if rows else ""


def card_html(card: ModelCard, sanity: str = "") -> str:
    """The card as HTML; missing sections are skipped, unknown fields listed at the end."""
    extra = dict(card.extra)
    parts = [_style(), f"<h2>{_e(card.name)}</h2>"]
    if extra.get("not_for_clinical_use", True):
        parts.append(f"<p class='banner'><b>{_e(NOT_FOR_CLINICAL_USE)}.</b> Not a medical device.</p>")
    facts = [f"classes {', '.join(_e(label) for label in card.labels)}",
             f"{_e(card.backbone)}, input {card.input_size}×{card.input_size} px"]
    if card.task:
        facts.insert(0, f"task {_e(card.task)}")
    if extra.get("created"):
        facts.append(f"created {_e(extra['created'])}")
    parts.append(f"<p class='muted'>{'; '.join(facts)}</p>")

    if extra.get("intended_use"):
        parts.append(f"<h3>Intended use</h3><p>{_e(extra['intended_use'])}</p>")
    if isinstance(extra.get("training_data"), Mapping):
        parts.append(_section_data(extra["training_data"]))
    if isinstance(extra.get("metrics"), Mapping):
        parts.append(_section_metrics(extra["metrics"], card.labels))
    checks = extra.get("external_checks")
    if isinstance(checks, (list, tuple)) and checks:
        items = [f"<li><b>{_e(check.get('data', '?'))}</b> ({_e(check.get('images', '?'))} images): "
                 f"{_e(check.get('finding', ''))}</li>" for check in checks if isinstance(check, Mapping)]
        parts.append("<h3>Checks on data it never saw</h3><ul>" + "".join(items) + "</ul>"
                     "<p class='muted'>Computed by <code>cxr-train evaluate-model</code>: nothing was fitted on "
                     "these images.</p>")
    parts.append(
        "<h3>How the viewer uses it</h3>"
        f"<p>Operating threshold {card.operating_threshold:.2f} (heat maps below it are hidden until you "
        f"ask for them); temperature {card.temperature:.3g} (probabilities are softmax(logits / T)); "
        f"heat-map layer {_e(card.cam_layer)}.</p>"
    )
    limitations = extra.get("known_limitations")
    if isinstance(limitations, (list, tuple)) and limitations:
        parts.append("<h3>Known limitations and failure modes</h3><ul>"
                     + "".join(f"<li>{_e(item)}</li>" for item in limitations) + "</ul>")
    risks = card_shortcut_risks(card)
    if risks:
        parts.append("<h3>Shortcut warnings</h3><ul>"
                     + "".join(f"<li class='warn'>{_e(item)}</li>" for item in risks) + "</ul>")
    if sanity:
        parts.append(sanity)
    if isinstance(extra.get("training"), Mapping):
        parts.append(_section_training(extra["training"]))
    if card.preprocessing:
        parts.append("<h3>Preprocessing</h3>" + _table(
            ("step", "what"), [[_e(k.replace("_", " ")), _e(v)] for k, v in card.preprocessing.items()]))
    parts.append(f"<h3>Provenance</h3><p class='muted'>weights {_e(card.weights_file)}<br>"
                 f"sha256 {_e(card.weights_sha256)}</p>")
    others = {k: v for k, v in extra.items() if k not in _SHOWN_FIELDS}
    if others:
        rows = [[_e(k), f"<code>{_e(json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)}</code>"]
                for k, v in others.items()]
        parts.append("<h3>Other fields</h3>" + _table(("field", "value"), rows))
    if not any(key in extra for key in ("intended_use", "training_data", "metrics", "known_limitations")):
        parts.append("<p class='warn'>This model card does not describe the model's intended use, data or "
                     "performance. Treat its output with extra caution.</p>")
    return "".join(parts)


SANITY_IMAGE_URL = "sanity-maps.png"


def sanity_html(randomisation: RandomisationResult | None = None, lung: LungHeatResult | None = None,
                image_url: str = "") -> str:
    """The on-demand sanity check's results, as a card section (with the maps' picture, if given)."""
    if randomisation is None and lung is None:
        return ""
    parts = ["<h3>Sanity check on this image</h3>"]
    if image_url:
        parts.append(f"<p><img src='{_e(image_url)}'></p>")
    parts.append("<ul>")
    if randomisation is not None:
        css = " class='warn'" if randomisation.similar else ""
        method = METHOD_LABELS.get(randomisation.method, randomisation.method)
        parts.append(f"<li{css}><b>Model randomisation</b> (Adebayo et al., 2018), {_e(method)} "
                     f"for {_e(randomisation.class_label)} at layer {_e(randomisation.layer)}: "
                     f"{_e(randomisation.message)} <span class='muted'>Randomised: "
                     f"{_e(', '.join(randomisation.randomised_layers))}.</span></li>")
    if lung is not None:
        css = " class='warn'" if lung.warning else ""
        parts.append(f"<li{css}><b>Heat outside the lungs</b> (simple lung mask, see the documentation): "
                     f"{_e(lung.message)}</li>")
    parts.append("</ul>")
    return "".join(parts)


def _normalised(cam: np.ndarray) -> np.ndarray:
    cam = np.asarray(cam, dtype=np.float32)
    span = float(cam.max() - cam.min()) if cam.size else 0.0
    return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)


def sanity_maps_image(randomisation: RandomisationResult | None, lung: LungHeatResult | None,
                      size: tuple[int, int] = (640, 230), background: np.ndarray | None = None) -> QImage | None:
    """Real map, randomised map and the rough lung mask side by side (matplotlib Agg → QImage),
    each over the radiograph (`background`, its 8-bit display image) when given."""
    panels: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    if randomisation is not None:
        panels.append((f"map for {randomisation.class_label}", _normalised(randomisation.real_cam), None))
        panels.append((f"top {len(randomisation.randomised_layers)} layers randomised",
                       _normalised(randomisation.randomised_cam), None))
    if lung is not None:
        mask = np.asarray(lung.mask, dtype=bool)
        step = max(1, max(mask.shape) // 256)
        small = mask[::step, ::step]
        heat = _normalised(randomisation.real_cam) if randomisation is not None else np.zeros((1, 1), np.float32)
        share = "—" if lung.outside_share is None else f"{lung.outside_share * 100:.0f} %"
        panels.append((f"lung mask; heat outside {share}", heat, small))
    if not panels:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    canvas = FigureCanvasAgg(figure)
    film = None
    if background is not None:
        step = max(1, max(background.shape[:2]) // 256)
        film = np.asarray(background)[::step, ::step]
    for i, (title, heat, mask) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), i + 1)
        shape = mask.shape if mask is not None else film.shape[:2] if film is not None else heat.shape
        extent = (0, shape[1], shape[0], 0)
        if film is not None:
            axes.imshow(film, cmap="gray", extent=extent, interpolation="bilinear")
        alpha = 0.55 if film is not None else 0.8 if mask is not None else 1.0
        axes.imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="bicubic", extent=extent, alpha=alpha)
        if mask is not None:
            axes.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=1.5,
                         extent=extent if mask.shape != shape else None)
        axes.set_title(title, fontsize=8.5)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.87, wspace=0.08)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba()).copy()
    return QImage(rgba.data, rgba.shape[1], rgba.shape[0], rgba.shape[1] * 4, QImage.Format.Format_RGBA8888).copy()


class ModelCardView(QWidget):
    """A QTextBrowser showing one card (or a placeholder), plus any sanity-check results."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelCardView")
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("modelCardBrowser")
        self.browser.setOpenExternalLinks(False)
        self.browser.setOpenLinks(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.browser)
        self._card: ModelCard | None = None
        self._randomisation: RandomisationResult | None = None
        self._lung: LungHeatResult | None = None
        self._background: np.ndarray | None = None
        self._render()

    def card(self) -> ModelCard | None:
        return self._card

    def set_card(self, card: ModelCard | None) -> None:
        self._card = card
        self._randomisation = None
        self._lung = None
        self._background = None
        self._render()

    def set_sanity_results(self, randomisation: RandomisationResult | None = None,
                           lung: LungHeatResult | None = None, background: np.ndarray | None = None) -> None:
        """The sanity check's maps (over `background`, the radiograph's 8-bit display image, when given)."""
        self._randomisation, self._lung, self._background = randomisation, lung, background
        self._render()

    def html(self) -> str:
        return self.browser.toHtml()

    def plain_text(self) -> str:
        return self.browser.toPlainText()

    def _render(self) -> None:
        if self._card is None:
            self.browser.setHtml("<p>No model loaded.</p>")
            return
        picture = sanity_maps_image(self._randomisation, self._lung, background=self._background)
        url = ""
        if picture is not None:
            url = SANITY_IMAGE_URL
            self.browser.document().addResource(QTextDocument.ResourceType.ImageResource, QUrl(url), picture)
        self.browser.setHtml(card_html(self._card, sanity_html(self._randomisation, self._lung, url)))


class ModelCardDialog(QDialog):
    """Help ▸ Model Card: the card of the loaded model in a resizable dialog."""

    def __init__(self, card: ModelCard | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelCardDialog")
        self.setWindowTitle(f"Model card — {card.name}" if card is not None else "Model card")
        self.view = ModelCardView(self)
        self.view.set_card(card)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
        self.resize(720, 760)


class OodBanner(QFrame):
    """"This image looks unlike the training data": the reasons, a Model card button, ✕ to dismiss.

    Hidden when there is nothing to say. Information-only notes (e.g. "the model is unsure")
    get a quieter style than warnings.
    """

    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("oodBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = make.label(self, "oodBannerTitle", wrap=True)
        self.text = make.label(self, "oodBannerText", wrap=True, rich=True)
        self.details_button = make.button(self, "Model card…", "oodBannerDetails", clicked=self.details_requested)
        self.close_button = make.tool_button(self, "oodBannerClose", "✕", "Dismiss for this image", self.hide)
        self.close_button.setAutoRaise(True)
        column = QVBoxLayout()
        column.setSpacing(2)
        column.addWidget(self.title)
        column.addWidget(self.text)
        column.addStretch(1)
        buttons = QHBoxLayout()
        buttons.setAlignment(Qt.AlignmentFlag.AlignTop)
        buttons.addWidget(self.details_button)
        buttons.addWidget(self.close_button)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 4, 6)
        layout.addLayout(column, 1)
        layout.addLayout(buttons)
        self._warnings: tuple[OodWarning, ...] = ()
        self.hide()

    def warnings(self) -> tuple[OodWarning, ...]:
        return self._warnings

    def set_warnings(self, warnings: Sequence[OodWarning]) -> None:
        """Show these reasons (or hide the banner when there are none)."""
        self._warnings = tuple(warnings)
        if not self._warnings:
            self.hide()
            return
        serious = any(w.severity != INFO for w in self._warnings)
        if serious:
            self.title.setText("<b>⚠ This image looks unlike the model's training data</b>")
            self.setStyleSheet("#oodBanner { background: #5a3b00; border: 1px solid #d08a00; }"
                               "#oodBanner QLabel { color: #fff1d6; }")
        else:
            self.title.setText("<b>Note on this result</b>")
            self.setStyleSheet("#oodBanner { background: #23364d; border: 1px solid #4a6d96; }"
                               "#oodBanner QLabel { color: #e3eefc; }")
        self.text.setText("<br>".join(f"• {_e(w.message)}" for w in self._warnings))
        self.show()
