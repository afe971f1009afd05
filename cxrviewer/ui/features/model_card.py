"""Help ▸ Model Card (also the AI panel's "Model card…" button) and the training-data banner over the image.

The banner (`teaching.ood.training_data_warnings`) says when the image is unlike the model's
training data; the warnings that depend on the prediction ("the model is unsure") only once
the AI is revealed. Dismissed for one image, it stays hidden there unless something new comes up.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt

from cxrviewer.core.model.runtime import image_key
from cxrviewer.state.ai import AiSession
from cxrviewer.state.read_first import ReadFirstFlow
from cxrviewer.state.session import ViewerSession
from cxrviewer.teaching.ood import training_data_warnings
from cxrviewer.ui.dialogs.model_card_view import ModelCardDialog, OodBanner
from cxrviewer.ui.shell.actions import make_action
from cxrviewer.ui.shell.protocol import Shell


class ModelCardFeature(QObject):
    """The Model Card action and dialog, and the training-data banner."""

    def __init__(self, shell: Shell, ai: AiSession, viewer: ViewerSession, flow: ReadFirstFlow,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.shell, self.ai, self.viewer, self.flow = shell, ai, viewer, flow
        self.dialog: ModelCardDialog | None = None
        self.banner = OodBanner(shell.host())
        shell.add_above_view(self.banner)
        self._dismissed_key: str | None = None
        self.action = make_action(shell.host(), "model_card", "&Model Card…", self.open,
                                  "The AI model's card: data, performance, limitations")
        self.banner.details_requested.connect(self.open)
        self.banner.close_button.clicked.connect(self._on_banner_dismissed)

    def open(self) -> ModelCardDialog:
        """The loaded model's card in a dialog (a placeholder when no model is loaded)."""
        model = self.ai.model
        dialog = ModelCardDialog(model.card if model is not None else None, self.shell.host())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.dialog = dialog
        return dialog

    def warnings(self) -> list[str]:
        return [w.message for w in self.banner.warnings()]

    def new_image(self) -> None:
        self._dismissed_key = None
        self.update()

    def update(self) -> None:
        """Training-data warnings for the image; the prediction's ("unsure") only once revealed."""
        image, model = self.viewer.image, self.ai.model
        if image is None or model is None or model.card is None:
            self.banner.set_warnings(())
            return
        prediction = self.ai.current_prediction() if self.flow.ai_visible() else None
        warnings = training_data_warnings(image, model.card, prediction.probabilities if prediction else None)
        if self._dismissed_key == image_key(image) and warnings == self.banner.warnings():
            return   # dismissed for this image: stay hidden unless something new comes up
        self.banner.set_warnings(warnings)

    def _on_banner_dismissed(self) -> None:
        self._dismissed_key = self.viewer.current_key()
