"""The trainee features of a MainWindow, wired in one place: read first, model card, sanity check, exports.

* Read first (Tools ▸ Read First, on by default): the "Read first" dock takes the trainee's
  call; until it is recorded `AiController.set_results_hidden(True)` keeps probabilities and
  heat map off screen while the results still arrive; the reveal shows them beside the call
  and the read goes to the reads database (image hash only, `teaching.reads`).
* Model card (Help ▸ Model Card, the AI panel's "Model card…" button, the training-data
  banner's button) and the training-data banner over the image (`teaching.ood`).
* Tools ▸ Sanity Check Heat Map…: the model randomisation test runs in the inference
  thread (`InferenceService.request_sanity`); the lung-mask heat share is computed here
  (cheap); both are shown with what they mean (`SanityCheckDialog`).
* Tools ▸ My Reads; File ▸ Export View (PNG + sidecar JSON), Copy View, Case Report (PDF):
  the AI result and map go into an export only once revealed.

MainWindow creates one `TraineeController(window)` right after its AiController.
"""
from __future__ import annotations

import html
import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from cxrviewer.core.errors import CxrError
from cxrviewer.teaching.export_view import OverlayState
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.runtime import image_key
from cxrviewer.teaching.ood import training_data_warnings
from cxrviewer.core.types import Prediction, XrayImage
from cxrviewer.ui.export_actions import (
    ExportResult,
    ask_export_path,
    canvas_sidecar,
    copy_view_to_clipboard,
    export_pdf,
    export_view_png,
)
from cxrviewer.ui.model_card_view import ModelCardDialog, ModelCardView, OodBanner
from cxrviewer.ui.my_reads import MyReadsDialog
from cxrviewer.ui.read_first import (
    PointPicker,
    ReadFirstPanel,
    ReadFirstSession,
    make_read_first_action,
    make_read_first_dock,
    read_first_enabled,
)

if TYPE_CHECKING:
    from cxrviewer.core.xai.audit import AuditResult
    from cxrviewer.core.xai.sanity import LungHeatResult, RandomisationResult
    from cxrviewer.ui.inference_service import SanityOutcome
    from cxrviewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

SANITY_CACHE_SIZE = 16
READ_LOOKUP_BYTES = 200 * 2**20   # My Reads › open a read: at most this much of the open study is hashed

LEFT_COLUMN_WIDTH = 300
STUDY_BROWSER_HEIGHT = 440   # at least 10 rows of 32 px thumbnails under the dark theme


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


def audit_html(result: "AuditResult") -> str:
    """The explanation audit in plain words: the verdict, the curve areas, the method agreement."""
    agreement = ", ".join(f"{html.escape(pair)} ρ = {rho:.2f}" for pair, rho in result.method_agreement.items()
                          if rho == rho)
    return (f"<p><b>Explanation audit</b> ({html.escape(result.class_label)}, {html.escape(result.method)}, "
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
        self.audit_result: "AuditResult | None" = None
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

    def set_audit(self, result: "AuditResult | None", error: str = "") -> None:
        self.audit_result = result
        if result is None:
            self.audit.setText(f"<p><b>Explanation audit</b> not available: {html.escape(error)}</p>")
        else:
            self.audit.setText(audit_html(result))
        self.audit.show()

    def audit_text(self) -> str:
        return self.audit.text() if not self.audit.isHidden() else ""


class TraineeController(QObject):
    """Read first, model card, sanity check, My Reads and exports for one MainWindow."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setObjectName("traineeController")
        self.window = window
        ai = self.ai = window.ai
        qsettings = window.settings.qsettings

        # read first --------------------------------------------------------------------
        self.read_first_panel = ReadFirstPanel()
        self.picker = PointPicker(window.canvas, self)
        self.read_first = ReadFirstSession(self.read_first_panel, picker=self.picker,
                                           enabled=read_first_enabled(qsettings), parent=self)
        self.read_first_dock = make_read_first_dock(self.read_first_panel, window)
        window.add_dock(self.read_first_dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.splitDockWidget(window.study_dock, self.read_first_dock, Qt.Orientation.Vertical)
        self.read_first_action = make_read_first_action(window, qsettings)

        # banner over the image -------------------------------------------------------
        self.ood_banner = OodBanner(window)
        window.centralWidget().layout().insertWidget(1, self.ood_banner)
        self._ood_dismissed_key: str | None = None

        # dialogs and sanity check ------------------------------------------------------
        self.model_card_dialog: ModelCardDialog | None = None
        self.my_reads_dialog: MyReadsDialog | None = None
        self._seen_images: dict[str, Path] = {}     # content hash → file, of images shown this session
        self.sanity_dialog: SanityCheckDialog | None = None
        self._sanity_id = 0
        self._sanity_image: XrayImage | None = None
        self.last_sanity: tuple[RandomisationResult, LungHeatResult | None] | None = None
        self._audit_id = 0
        # the check is deterministic (fixed seed): asking again for the same map shows the answer
        self._sanity_key: tuple | None = None
        self._sanity_cache: OrderedDict[tuple, tuple[RandomisationResult, LungHeatResult | None]] = OrderedDict()

        self._create_actions()
        self._connect()
        ai.set_results_hidden(not self.read_first.ai_visible())
        self._sync_hot_threshold()

    # ============================================================ construction
    def _action(self, name: str, text: str, slot, shortcut: str = "", tip: str = "") -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(f"action_{name}")
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.window.addAction(action)
        return action

    def _create_actions(self) -> None:
        window = self.window
        a = self._action
        self.export_view_action = a("export_view", "&Export View…", self._on_export_view_triggered, "Ctrl+E",
                                    "Save the view as shown (PNG) with a JSON record of how it was made")
        self.copy_view_action = a("copy_view", "&Copy View", self._on_copy_view_triggered, "Ctrl+Shift+C",
                                  "Copy the view as shown to the clipboard")
        self.case_report_action = a("case_report", "Case &Report (PDF)…", self._on_case_report_triggered, "",
                                    "A one-page PDF: the view, the AI result, your call and the comparison")
        self.my_reads_action = a("my_reads", "My &Reads…", self._on_my_reads_triggered, "",
                                 "Your recorded reads: agreement with the model and the labels, calibration")
        self.sanity_action = a("sanity_check", "&Sanity Check Heat Map…", self._on_sanity_triggered, "",
                               "Does the heat map depend on the model, and is it on the lungs?")
        self.model_card_action = a("model_card", "&Model Card…", self._on_model_card_triggered, "",
                                   "The AI model's card: data, performance, limitations")
        self.focus_read_action = a("focus_read", "Make Your &Call (Keyboard)", self._on_focus_read_triggered, "F2",
                                   "Focus the Read First panel: a letter calls, 0-9 sets the confidence, "
                                   "Enter records and reveals")

        file_menu = window.menu("file")
        quit_action = window.action("quit")
        for action in (self.export_view_action, self.copy_view_action, self.case_report_action):
            file_menu.insertAction(quit_action, action)
        file_menu.insertSeparator(quit_action)
        tools = window.menu("tools")
        tools.addSeparator()
        tools.addAction(self.read_first_action)
        tools.addAction(self.focus_read_action)
        tools.addAction(self.my_reads_action)
        tools.addAction(self.sanity_action)
        help_menu = window.menu("help")
        help_menu.insertAction(help_menu.actions()[0] if help_menu.actions() else None, self.model_card_action)
        self._update_enabled()

    def _on_focus_read_triggered(self) -> None:
        if not self.read_first_dock.isVisible():
            self.read_first_dock.show()
        self.read_first_dock.raise_()
        self.read_first_panel.focus_call()

    def _connect(self) -> None:
        window, ai, session = self.window, self.ai, self.read_first
        window.image_changed.connect(self._on_window_image_changed)
        ai.prediction_shown.connect(self._on_ai_prediction_shown)
        ai.overlay_updated.connect(self._on_ai_overlay_updated)
        ai.service.model_ready.connect(self._on_service_model_ready)
        ai.service.sanity_ready.connect(self._on_service_sanity_ready)
        ai.service.sanity_failed.connect(self._on_service_sanity_failed)
        ai.service.audit_ready.connect(self._on_service_audit_ready)
        ai.service.audit_failed.connect(self._on_service_audit_failed)
        ai.panel.model_card_requested.connect(self.open_model_card)
        controls = ai.controls
        controls.threshold_changed.connect(self._on_controls_scale_changed)
        controls.normalisation_changed.connect(self._on_controls_scale_changed)
        controls.absolute_max_changed.connect(self._on_controls_scale_changed)
        session.ai_visibility_changed.connect(self._on_read_first_ai_visibility_changed)
        session.problem.connect(self._on_read_first_problem)
        self.read_first_action.toggled.connect(session.set_enabled)
        self.ood_banner.details_requested.connect(self.open_model_card)
        self.ood_banner.close_button.clicked.connect(self._on_ood_banner_dismissed)

    def apply_default_layout(self) -> None:
        """First start: a wider left column, the study browser above the Read first panel."""
        window = self.window
        window.resizeDocks([window.study_dock], [LEFT_COLUMN_WIDTH], Qt.Orientation.Horizontal)
        window.resizeDocks([window.study_dock, self.read_first_dock],
                           [STUDY_BROWSER_HEIGHT, max(window.height() - STUDY_BROWSER_HEIGHT, 300)],
                           Qt.Orientation.Vertical)

    # ============================================================ public API
    def revealed(self) -> bool:
        """True when the AI result may be shown (read first off, or the call is recorded)."""
        return self.read_first.ai_visible()

    def open_model_card(self) -> ModelCardDialog:
        """The loaded model's card in a dialog (a placeholder when no model is loaded)."""
        model = self.ai.current_model()
        dialog = ModelCardDialog(model.card if model is not None else None, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.model_card_dialog = dialog
        return dialog

    def open_my_reads(self) -> MyReadsDialog | None:
        try:
            store = self.read_first.store()
            dialog = MyReadsDialog(store, parent=self.window)
        except CxrError as exc:
            self._notice(f"Your reads could not be opened: {exc}")
            return None
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open_requested.connect(self.open_read_image)
        dialog.open()
        self.my_reads_dialog = dialog
        return dialog

    def open_read_image(self, sha256: str, frame: int = 0) -> bool:
        """Show the image a read was made on: one seen this session, else one of the open study's files
        with that content hash. False (and a note) when it is not among them."""
        window = self.window
        paths = [Path(p).resolve() for p in window.image_paths()]
        known = self._seen_images.get(sha256)
        if known is not None and known.resolve() in paths:
            window.show_index(paths.index(known.resolve()), frame)
            return True
        from cxrviewer.core.model.card import sha256_file

        seen = {path.resolve() for path in self._seen_images.values()}
        budget = READ_LOOKUP_BYTES   # hashing is on the GUI thread: only as much as reads in well under a second
        for index, path in enumerate(paths):
            if path in seen:
                continue   # its hash is known, and it is not this one
            try:
                size = path.stat().st_size
                if not path.is_file() or size > budget:
                    continue
                budget -= size
                digest = sha256_file(path)
            except OSError:
                continue
            self._seen_images[digest] = path
            if digest == sha256:
                window.show_index(index, frame)
                return True
        self._notice("That image is not in the study that is open: open its folder, then choose the read again. "
                     "(Reads keep only a content hash of the image, never its name or path.)", False)
        return False

    def run_sanity_check(self) -> SanityCheckDialog | None:
        """Start the sanity check of the map shown (or the current target) for the image shown."""
        image = self.window.current_image()
        model = self.ai.current_model()
        if image is None:
            self._notice("Open an image first: the sanity check tests the heat map of the image shown.", False)
            return None
        if model is None:
            self._notice("No AI model is loaded, so there is no heat map to check.", False)
            return None
        if not self.revealed():
            self._notice("Read first: record your call before checking the AI's heat map.", False)
            return None
        cam = self.ai.shown_cam()
        target = self.ai.controls.target()
        class_index = cam.class_index if cam is not None else target.class_index
        layer = cam.layer if cam is not None else target.layer
        method = cam.method if cam is not None else target.method
        if self.sanity_dialog is not None:
            try:
                self.sanity_dialog.close()   # one check at a time: the newest question wins
            except RuntimeError:             # already deleted
                self.sanity_dialog = None
        dialog = SanityCheckDialog(model.card, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._on_sanity_dialog_finished)
        self.sanity_dialog = dialog
        self._sanity_image = image
        key = (model.name, model.card.weights_sha256 if model.card else "", image_key(image), class_index, layer, method)
        self._sanity_key = key
        cached = self._sanity_cache.get(key)
        if cached is not None:
            self._sanity_cache.move_to_end(key)
            self._sanity_id = 0
            self.last_sanity = cached
            dialog.set_results(*cached, image=image)
            dialog.open()
            self._request_audit(dialog, cam)
            return dialog
        label = model.labels[class_index] if class_index is not None else "the top class"
        dialog.set_running(f"Recomputing the {label} map with the model's top layers randomised… "
                           "(in the background; this takes a few seconds)")
        dialog.open()
        self.last_sanity = None
        self._sanity_id = self.ai.service.request_sanity(image, class_index, layer, method)
        self._request_audit(dialog, cam)
        return dialog

    def _request_audit(self, dialog: SanityCheckDialog, cam) -> None:
        """The explanation audit of the map on screen, beside the sanity check (same dialog)."""
        if cam is None:
            return
        dialog.set_audit_running()
        self._audit_id = self.ai.service.request_audit(self._sanity_image, cam.class_index, cam.method, cam.layer)

    def _on_service_audit_ready(self, outcome) -> None:
        if self.sanity_dialog is None or not self._audit_id \
                or (self._audit_id != -1 and outcome.request_id != self._audit_id):
            return
        self._audit_id = 0
        try:
            self.sanity_dialog.set_audit(outcome.result)
        except RuntimeError:
            self.sanity_dialog = None

    def _on_service_audit_failed(self, request_id: int, message: str) -> None:
        if request_id != self._audit_id or self.sanity_dialog is None:
            return
        self._audit_id = 0
        try:
            self.sanity_dialog.set_audit(None, message)
        except RuntimeError:
            self.sanity_dialog = None

    def sidecar(self) -> dict:
        """The export record of the view now; the AI result only once revealed."""
        model = self.ai.current_model()
        revealed = self.revealed()
        return canvas_sidecar(
            self.window.canvas,
            anonymise=self.window.is_anonymised(),
            card=model.card if model is not None else None,
            prediction=self.ai.current_prediction() if revealed else None,
            overlay=self._overlay_state() if revealed else None,
            read_first_state=self.read_first.export_state(),
            warnings=[w.message for w in self.ood_banner.warnings()] if revealed else None,
        )

    def export_view(self, path: str | Path | None = None) -> ExportResult | None:
        """File ▸ Export View: PNG + sidecar JSON (asks for a path when none is given)."""
        if path is None:
            path = ask_export_path(self.window, "png", self._export_folder(), self._export_name())
            if path is None:
                return None
        try:
            result = export_view_png(self.window.canvas, path, self.sidecar(), anonymise=self.window.is_anonymised())
        except CxrError as exc:
            self._notice(f"Export failed: {exc}")
            return None
        self.window.settings.set_export_folder(Path(result.png).parent)
        self.window.statusBar().showMessage(f"Exported {result.png.name} and {result.sidecar.name}", 10000)
        return result

    def copy_view(self) -> bool:
        try:
            copy_view_to_clipboard(self.window.canvas, self.sidecar(), anonymise=self.window.is_anonymised())
        except CxrError as exc:
            self._notice(f"Copy failed: {exc}")
            return False
        self.window.statusBar().showMessage("View copied to the clipboard", 5000)
        return True

    def export_case_report(self, path: str | Path | None = None) -> Path | None:
        """File ▸ Case Report: a one-page PDF with the view, the result, the call and the comparison."""
        if path is None:
            path = ask_export_path(self.window, "pdf", self._export_folder(), self._export_name())
            if path is None:
                return None
        try:
            written = export_pdf(
                self.window.canvas, path, self.sidecar(), anonymise=self.window.is_anonymised(),
                call=self.read_first_panel.recorded_call(), comparison=self.read_first.last_comparison,
                warnings=[w.message for w in self.ood_banner.warnings()],
            )
        except CxrError as exc:
            self._notice(f"Case report failed: {exc}")
            return None
        self.window.settings.set_export_folder(Path(written).parent)
        self.window.statusBar().showMessage(f"Case report written: {Path(written).name}", 10000)
        return Path(written)

    # ============================================================ helpers
    def _notice(self, message: str, problem: bool = True) -> None:
        self.window.notice.show_notice(message, problem=problem)
        self.window.statusBar().showMessage(message, 10000)

    def _export_folder(self) -> str:
        folder = Path(self.window.settings.export_folder())
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:   # unwritable: let the dialog start where it can
            return ""
        return str(folder)

    def _export_name(self) -> str:
        """A file name without patient data: the image hash, never the file or patient name."""
        image = self.window.current_image()
        return f"cxr-view-{image.sha256[:10]}" if image is not None and image.sha256 else "cxr-view"

    def _overlay_state(self) -> OverlayState | None:
        cam = self.ai.shown_cam()
        model = self.ai.current_model()
        if cam is None or model is None:
            return None
        c = self.ai.controls
        absolute = c.normalisation() == "absolute"
        return OverlayState(
            method=cam.method, layer=cam.layer, class_index=cam.class_index,
            class_label=model.labels[cam.class_index], threshold=c.threshold(), opacity=c.opacity(),
            colormap=c.colormap(), normalisation=c.normalisation(),
            absolute_max=c.absolute_max() if absolute else None,
            visible=self.ai.overlay.isVisible(), shown_below_operating_threshold=self.ai.is_shown_anyway(),
        )

    def _sync_hot_threshold(self) -> None:
        c = self.ai.controls
        absolute = c.normalisation() == "absolute"
        self.read_first.set_hot_threshold(c.threshold(), c.normalisation(), c.absolute_max() if absolute else None)

    def _update_ood(self) -> None:
        """Training-data warnings for the image; the prediction's ("unsure") only once revealed."""
        image = self.window.current_image()
        model = self.ai.current_model()
        if image is None or model is None or model.card is None:
            self.ood_banner.set_warnings(())
            return
        prediction = self.ai.current_prediction() if self.revealed() else None
        warnings = training_data_warnings(image, model.card, prediction.probabilities if prediction else None)
        if self._ood_dismissed_key == image_key(image) and warnings == self.ood_banner.warnings():
            return   # dismissed for this image: stay hidden unless something new comes up
        self.ood_banner.set_warnings(warnings)

    def _update_enabled(self) -> None:
        has_image = self.window.current_image() is not None
        for action in (self.export_view_action, self.copy_view_action, self.case_report_action):
            action.setEnabled(has_image)

    # ============================================================ slots
    def _on_window_image_changed(self, image: XrayImage | None) -> None:
        if image is not None and image.sha256:
            self._seen_images[image.sha256] = Path(image.path)
        self.read_first.set_image(image)
        self._ood_dismissed_key = None
        self._update_ood()
        self._update_enabled()

    def _on_ai_prediction_shown(self, prediction: Prediction) -> None:
        self._tell_read_first_the_model()
        self.read_first.set_prediction(prediction)
        self._update_ood()

    def _on_ai_overlay_updated(self, _key: str) -> None:
        self.read_first.set_cam(self.ai.shown_cam())

    def _on_service_model_ready(self, _info: object) -> None:
        self._tell_read_first_the_model()
        self._update_ood()

    def _tell_read_first_the_model(self) -> None:
        """The call choices are the model's classes; its card threshold decides its call (`core.model_call`)."""
        model = self.ai.current_model()
        if model is not None and model.card is not None:
            self.read_first.set_model(model.name, model.labels, model.card.operating_threshold)

    def _on_controls_scale_changed(self, *_args: object) -> None:
        self._sync_hot_threshold()

    def _on_read_first_ai_visibility_changed(self, visible: bool) -> None:
        self.ai.set_results_hidden(not visible)
        self._update_ood()

    def _on_read_first_problem(self, message: str) -> None:
        self._notice(message)

    def _on_ood_banner_dismissed(self) -> None:
        image = self.window.current_image()
        self._ood_dismissed_key = image_key(image) if image is not None else None

    def _on_export_view_triggered(self) -> None:
        self.export_view()

    def _on_copy_view_triggered(self) -> None:
        self.copy_view()

    def _on_case_report_triggered(self) -> None:
        self.export_case_report()

    def _on_my_reads_triggered(self) -> None:
        self.open_my_reads()

    def _on_sanity_triggered(self) -> None:
        self.run_sanity_check()

    def _on_model_card_triggered(self) -> None:
        self.open_model_card()

    def _on_service_sanity_ready(self, outcome: SanityOutcome) -> None:
        if outcome.request_id != self._sanity_id or outcome.result is None:
            return
        from cxrviewer.core.xai.sanity import lung_heat_check

        image = self._sanity_image
        lung = None
        if image is not None and image_key(image) == outcome.image_key:
            try:
                lung = lung_heat_check(image, outcome.result.real_cam)
            except (ValueError, CxrError) as exc:   # an odd image: report the randomisation test alone
                log.warning("lung heat check failed: %s", exc)
        self.last_sanity = (outcome.result, lung)
        if self._sanity_key is not None:
            self._sanity_cache[self._sanity_key] = self.last_sanity
            while len(self._sanity_cache) > SANITY_CACHE_SIZE:
                self._sanity_cache.popitem(last=False)
        self._sanity_id = 0
        dialog = self.sanity_dialog
        if dialog is not None:
            try:
                dialog.set_results(outcome.result, lung, image=image)
            except RuntimeError:   # the dialog was closed (and deleted) meanwhile
                self.sanity_dialog = None
        self.window.statusBar().showMessage(outcome.result.message, 10000)

    def _on_sanity_dialog_finished(self, _result: int) -> None:
        if self.sender() is not self.sanity_dialog:
            return
        if self._sanity_id:
            self.ai.service.cancel_sanity()   # closed before the answer: free the worker for the next map
            self._sanity_id = 0
        if self._audit_id:
            self.ai.service.cancel_audit()
            self._audit_id = 0
        self.sanity_dialog = None

    def _on_service_sanity_failed(self, request_id: int, message: str) -> None:
        if request_id != self._sanity_id:
            return
        self._sanity_id = 0
        dialog = self.sanity_dialog
        if dialog is not None:
            try:
                dialog.set_failed(message)
                return
            except RuntimeError:
                self.sanity_dialog = None
        self._notice(f"The sanity check failed: {message}")
