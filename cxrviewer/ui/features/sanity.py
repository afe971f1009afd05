"""Tools ▸ Sanity Check Heat Map: the model randomisation test (in the worker) and the lung-mask heat share.

The randomisation test runs in the inference worker (`InferenceService.request_sanity`); the
lung-mask heat share is computed here (cheap); both are shown with what they mean, beside the
explanation audit of the map on screen (`request_audit`). The check is deterministic (fixed
seed): asking again for the same map shows the cached answer.
"""
from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from cxrviewer.core.errors import CxrError
from cxrviewer.core.lru import LruCache
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import CamResult, XrayImage
from cxrviewer.core.xai.cam import METHOD_LABELS
from cxrviewer.state.ai import AiSession
from cxrviewer.state.read_first import ReadFirstFlow
from cxrviewer.state.session import ViewerSession
from cxrviewer.teaching.export_view import method_pair_label
from cxrviewer.ui.dialogs.model_card_view import ModelCardView
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell
from cxrviewer.ui.workers.inference_service import InferenceService

if TYPE_CHECKING:
    from cxrviewer.core.xai.audit import AuditResult
    from cxrviewer.core.xai.sanity import LungHeatResult, RandomisationResult
    from cxrviewer.ui.workers.inference_service import SanityOutcome

log = logging.getLogger(__name__)

SANITY_CACHE_SIZE = 16


def sanity_summary_html(randomisation: RandomisationResult | None, lung: LungHeatResult | None) -> str:
    """The sanity check in plain language: the two numbers and what they mean."""
    parts: list[str] = []
    if randomisation is not None:
        rho = randomisation.rank_correlation
        n = len(randomisation.randomised_layers)
        number = "not computable (a flat map)" if rho is None else f"{rho:.2f}"
        if randomisation.similar is None:
            meaning = "One of the maps is empty, so this test says nothing about this map."
        elif randomisation.similar:
            meaning = ("<b>Warning:</b> the map barely changed when the model's learned weights were replaced "
                       "by random ones. It is probably driven by the image (edges, contrast) rather than by "
                       "what the model learned, so it does not explain the prediction.")
        elif lung is not None and lung.warning:
            meaning = ("The map changed a lot once the learned weights were scrambled, so it depends on the "
                       "model — but see the shortcut warning below: the model may be looking at the wrong place.")
        else:
            meaning = ("<b>Passed:</b> the map changed a lot once the learned weights were scrambled, as a map "
                       "that explains the model should.")
        parts.append(f"<p><b>Rank correlation</b> (Spearman ρ) between the {html.escape(randomisation.class_label)} "
                     f"map and the same map with the top {n} layers randomised: <b>{number}</b>.<br>{meaning}</p>")
    if lung is not None:
        if lung.outside_share is None:
            share, meaning = "not measured", html.escape(lung.message)
        else:
            share = f"{lung.outside_share * 100:.0f} %"
            meaning = ("<b>Shortcut warning:</b> most of the heat is outside the lungs — the model may be using "
                       "labels, borders, devices or the patient's build instead of the lungs."
                       if lung.warning else "Most of the heat lies on the lung fields.")
        parts.append(f"<p><b>Share of the heat outside the lungs</b> (a rough lung mask): <b>{share}</b>.<br>"
                     f"{meaning}</p>")
    parts.append("<p style='color:#777'>A trustworthy map changes when the model's weights are randomised (low ρ) "
                 "and sits mostly on the lungs. Passing both does not make the prediction right.</p>")
    return "".join(parts)


def audit_html(result: AuditResult) -> str:
    """The explanation audit in plain words: the verdict, the curve areas, the method agreement."""
    agreement = ", ".join(f"{html.escape(method_pair_label(pair))} ρ = {rho:.2f}"
                          for pair, rho in result.method_agreement.items() if rho == rho)
    method = METHOD_LABELS.get(result.method, result.method)
    return (f"<p><b>Explanation audit</b> ({html.escape(result.class_label)}, {html.escape(method)}, "
            f"layer {html.escape(result.layer)}): {html.escape(result.verdict())}<br>"
            f"Deletion curve area {result.deletion_area:.2f} (random map {result.random_deletion_area:.2f}; "
            f"lower is better), insertion {result.insertion_area:.2f} (random {result.random_insertion_area:.2f}; "
            f"higher is better). Agreement between methods: {agreement or 'not measurable'}.</p>")


class SanityCheckDialog(QDialog):
    """Tools ▸ Sanity Check Heat Map: running state, then the plain-language summary and the card section."""

    def __init__(self, card: ModelCard | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sanityCheckDialog")
        self.setWindowTitle("Sanity check of the heat map")
        self.summary = QLabel(self)
        self.summary.setObjectName("sanitySummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.view = ModelCardView(self)
        self.view.set_card(card)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.audit = QLabel(self)
        self.audit.setObjectName("explanationAudit")
        self.audit.setWordWrap(True)
        self.audit.setTextFormat(Qt.TextFormat.RichText)
        self.audit.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.audit)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.audit_result: AuditResult | None = None
        self.randomisation: RandomisationResult | None = None
        self.lung: LungHeatResult | None = None
        self.resize(760, 780)

    def set_running(self, text: str) -> None:
        self.summary.setText(f"<p>{html.escape(text)}</p>")

    def set_failed(self, message: str) -> None:
        self.summary.setText(f"<p style='color:#c0392b'><b>The sanity check failed:</b> {html.escape(message)}</p>")

    def set_results(self, randomisation: RandomisationResult | None, lung: LungHeatResult | None,
                    image: XrayImage | None = None) -> None:
        """The results, with the maps drawn over `image` (the radiograph checked) when given."""
        self.randomisation, self.lung = randomisation, lung
        self.summary.setText(sanity_summary_html(randomisation, lung))
        background = None
        if image is not None:
            from cxrviewer.core.imaging import default_display

            background = default_display(image)
        self.view.set_sanity_results(randomisation, lung, background)
        browser = self.view.browser
        browser.moveCursor(QTextCursor.MoveOperation.Start)
        if browser.find("Sanity check on this image"):   # scroll the card to the results
            browser.ensureCursorVisible()
            cursor = browser.textCursor()
            cursor.clearSelection()
            browser.setTextCursor(cursor)

    def summary_text(self) -> str:
        return self.summary.text()

    def set_audit_running(self) -> None:
        self.audit.setText("<p><b>Explanation audit</b>: blurring away the hottest parts of the map… "
                           "(in the background)</p>")
        self.audit.show()

    def set_audit(self, result: AuditResult | None, error: str = "") -> None:
        self.audit_result = result
        if result is None:
            self.audit.setText(f"<p><b>Explanation audit</b> not available: {html.escape(error)}</p>")
        else:
            self.audit.setText(audit_html(result))
        self.audit.show()

    def audit_text(self) -> str:
        return self.audit.text() if not self.audit.isHidden() else ""


class SanityCheck(QObject):
    """Runs the sanity check of the map shown (or the current target) and shows it in `SanityCheckDialog`."""

    def __init__(self, shell: Shell, service: InferenceService, ai: AiSession, viewer: ViewerSession,
                 flow: ReadFirstFlow, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.service, self.ai, self.viewer, self.flow = shell, service, ai, viewer, flow
        self.dialog: SanityCheckDialog | None = None
        self.last: tuple[RandomisationResult, LungHeatResult | None] | None = None
        self._sanity_id = 0
        self._audit_id = 0
        self._image: XrayImage | None = None
        self._key: tuple[object, ...] | None = None
        self._cache: LruCache[tuple[object, ...], tuple[RandomisationResult, LungHeatResult | None]] = \
            LruCache(max_items=SANITY_CACHE_SIZE)
        self.action = make_action(shell.host(), "sanity_check", "&Sanity Check Heat Map…", self.run,
                                  "Does the heat map depend on the model, and is it on the lungs?")
        service.sanity_ready.connect(self._on_service_sanity_ready)
        service.sanity_failed.connect(self._on_service_sanity_failed)
        service.audit_ready.connect(self._on_service_audit_ready)
        service.audit_failed.connect(self._on_service_audit_failed)

    def run(self) -> SanityCheckDialog | None:
        """Start the sanity check of the map shown (or the current target) for the image shown."""
        image, model = self.viewer.image, self.ai.model
        if image is None:
            self.shell.show_notice("Open an image first: the sanity check tests the heat map of the image shown.", False)
            return None
        if model is None:
            self.shell.show_notice("No AI model is loaded, so there is no heat map to check.", False)
            return None
        if not self.flow.ai_visible():
            self.shell.show_notice("Read first: record your call before checking the AI's heat map.", False)
            return None
        cam = self.ai.shown_cam()
        target = self.ai.overlay.target
        class_index = cam.class_index if cam is not None else target.class_index
        layer = cam.layer if cam is not None else target.layer
        method = cam.method if cam is not None else target.method
        if self.dialog is not None:
            try:
                self.dialog.close()   # one check at a time: the newest question wins
            except RuntimeError:      # already deleted
                self.dialog = None
        dialog = SanityCheckDialog(model.card, self.shell.host())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._on_dialog_finished)
        self.dialog = dialog
        self._image = image
        key = (model.name, model.card.weights_sha256 if model.card else "", image_key(image), class_index, layer, method)
        self._key = key
        cached = self._cache.get(key)
        if cached is not None:
            self._sanity_id = 0
            self.last = cached
            dialog.set_results(*cached, image=image)
            dialog.open()
            self._request_audit(dialog, cam)
            return dialog
        label = model.labels[class_index] if class_index is not None else "the top class"
        dialog.set_running(f"Recomputing the {label} map with the model's top layers randomised… "
                           "(in the background; this takes a few seconds)")
        dialog.open()
        self.last = None
        self._sanity_id = self.service.request_sanity(image, class_index, layer, method)
        self._request_audit(dialog, cam)
        return dialog

    def _request_audit(self, dialog: SanityCheckDialog, cam: CamResult | None) -> None:
        """The explanation audit of the map on screen, beside the sanity check (same dialog)."""
        if cam is None or self._image is None:
            return
        dialog.set_audit_running()
        self._audit_id = self.service.request_audit(self._image, cam.class_index, cam.method, cam.layer)

    def _with_dialog(self, show: object) -> bool:
        """Call `show(dialog)`; False (and forget it) when the dialog was closed and deleted meanwhile."""
        if self.dialog is None:
            return False
        try:
            show(self.dialog)  # type: ignore[operator]
            return True
        except RuntimeError:
            self.dialog = None
            return False

    def _on_service_audit_ready(self, outcome: object) -> None:
        if self.dialog is None or not self._audit_id \
                or (self._audit_id != -1 and getattr(outcome, "request_id", None) != self._audit_id):
            return
        self._audit_id = 0
        self._with_dialog(lambda d: d.set_audit(getattr(outcome, "result", None)))

    def _on_service_audit_failed(self, request_id: int, message: str) -> None:
        if request_id != self._audit_id or self.dialog is None:
            return
        self._audit_id = 0
        self._with_dialog(lambda d: d.set_audit(None, message))

    def _on_service_sanity_ready(self, outcome: SanityOutcome) -> None:
        if outcome.request_id != self._sanity_id or outcome.result is None:
            return
        from cxrviewer.core.xai.sanity import lung_heat_check

        image = self._image
        lung = None
        if image is not None and image_key(image) == outcome.image_key:
            try:
                lung = lung_heat_check(image, outcome.result.real_cam)
            except (ValueError, CxrError) as exc:   # an odd image: report the randomisation test alone
                log.warning("lung heat check failed: %s", exc)
        self.last = (outcome.result, lung)
        if self._key is not None:
            self._cache.put(self._key, self.last)
        self._sanity_id = 0
        result = outcome.result
        self._with_dialog(lambda d: d.set_results(result, lung, image=image))
        self.shell.show_status(outcome.result.message, 10000)

    def _on_dialog_finished(self, _result: int) -> None:
        if self.sender() is not self.dialog:
            return
        if self._sanity_id:
            self.service.cancel_sanity()   # closed before the answer: free the worker for the next map
            self._sanity_id = 0
        if self._audit_id:
            self.service.cancel_audit()
            self._audit_id = 0
        self.dialog = None

    def _on_service_sanity_failed(self, request_id: int, message: str) -> None:
        if request_id != self._sanity_id:
            return
        self._sanity_id = 0
        if not self._with_dialog(lambda d: d.set_failed(message)):
            self.shell.show_notice(f"The sanity check failed: {message}")
