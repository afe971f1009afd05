"""The model card view (rendered from a card shaped like trainer/export.py writes it) and the OOD banner."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.xai.sanity import LungHeatResult, RandomisationResult
from cxrviewer.teaching.ood import INFO, OodWarning
from cxrviewer.ui.dialogs.model_card_view import ModelCardDialog, ModelCardView, OodBanner, card_html, sanity_html

from .image_compare import OUTPUT_DIR, assert_matches_golden, qimage_to_rgb, write_png

# The structure of trainer/export.py's card_extra (numbers made up, text abridged).
EXTRA = {
    "intended_use": "Teaching and research: a second reader for radiology trainees. Not a medical device.",
    "not_for_clinical_use": True,
    "created": "2026-11-22",
    "training_data": {
        "sources": {"chest_xray": "Guangzhou Women and Children's Medical Center pediatric chest radiographs "
                                  "(Kermany et al., Cell 2018). Children aged 1-5 years, AP views, one centre."},
        "split": "by patient, stratified by label and source, seed 42, fractions [0.8, 0.1, 0.1]",
        "split_counts": {"train": 4172, "val": 522, "test": 522},
        "integrity": "unreadable and duplicate images excluded before splitting",
    },
    "training": {"backbone_weights": "imagenet", "epochs_max": 30, "augmentation": {"rotation_deg": 7.0}},
    "metrics": {
        "evaluated_on": "internal test split: patients never seen in training",
        "temperature": 1.3,
        "test": {
            "n": 522, "accuracy": 0.81, "macro_f1": 0.78,
            "per_class": {
                "NORMAL": {"precision": 0.9, "recall": 0.88, "f1": 0.89, "support": 134, "auc_ovr": 0.97},
                "BACTERIAL": {"precision": 0.8, "recall": 0.84, "f1": 0.82, "support": 253, "auc_ovr": 0.9},
                "VIRAL": {"precision": 0.66, "recall": 0.6, "f1": 0.63, "support": 135, "auc_ovr": 0.84},
            },
            "macro_auc_ovr": 0.9,
            "confusion_matrix": [[118, 8, 8], [6, 212, 35], [7, 47, 81]],
        },
        "calibration": {"ece_raw": 0.08, "ece_temperature_scaled": 0.03},
        "operating_threshold": 0.42,
        "pneumonia_vs_normal": {"threshold": 0.42, "accuracy": 0.93, "sensitivity": 0.95, "specificity": 0.88,
                                "n_positive": 388, "n_negative": 134, "auc": 0.97},
        "bacterial_vs_viral_auc": 0.79,
        "split": "test",
    },
    "known_limitations": [
        "Trained only on pediatric (age 1-5) AP radiographs from one hospital: adults are out of distribution.",
        "The heat map shows what drove the score, not where the disease is.",
    ],
    "cam_absolute_max": {"gradcam": 0.25},
}


def make_card(**extra) -> ModelCard:
    return ModelCard(name="pneumonia3", labels=("NORMAL", "BACTERIAL", "VIRAL"), input_size=192,
                     backbone="densenet121", cam_layer="relu", weights_file="model.keras",
                     weights_sha256="f273" + "0" * 60, task="pneumonia3", temperature=1.3,
                     operating_threshold=0.42, preprocessing={"input_size": 192, "resize": "whole image"},
                     extra=extra)


CARD = make_card(**EXTRA)


def test_card_html_renders_every_section() -> None:
    text = card_html(CARD)
    for expected in (
        "Intended use", "Teaching and research", "Training data", "Guangzhou Women", "by patient",
        "<td>train</td><td class='num'>4172</td>", "<b>total</b>", "Performance", "522 test images",
        "accuracy 81.0 %", "recall (sensitivity)", "Confusion matrix", "Pneumonia vs normal at the operating threshold",
        "Bacterial vs viral AUC:</b> 0.790", "Known limitations and failure modes", "pediatric (age 1-5)",
        "Operating threshold 0.42", "not for clinical use", "Provenance", "f273",
        "Other fields", "cam_absolute_max",
    ):
        assert expected in text, expected
    assert "Shortcut warnings" not in text                          # one source: no mixed-source risk
    assert "Only 522" not in text                                    # enough test images: no small-n warning


def test_card_html_degrades_gracefully_and_escapes() -> None:
    bare = card_html(make_card())
    assert "does not describe the model's intended use" in bare and "Performance" not in bare
    hostile = card_html(make_card(intended_use="<script>alert(1)</script>", known_limitations=["a < b & c"]))
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile and "a &lt; b &amp; c" in hostile
    small = card_html(make_card(metrics={"test": {"n": 10, "accuracy": 0.3}}))
    assert "Only 10 test images" in small


def test_mixed_sources_give_a_shortcut_warning() -> None:
    text = card_html(make_card(training_data={"sources": {"covid19": "Hannover adults", "chest_xray": "children"}}))
    assert "Shortcut warnings" in text and "2 sources (covid19, chest_xray)" in text


def _randomisation(rho: float) -> RandomisationResult:
    cam = np.zeros((2, 2), np.float32)
    return RandomisationResult("pneumonia3", 1, "BACTERIAL", "gradcam", "relu", ("predictions", "bn"), rho, cam, cam)


def test_sanity_section() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    text = sanity_html(_randomisation(0.82), LungHeatResult(0.7, 0.25, mask))
    assert "Model randomisation" in text and "ρ = 0.82" in text and "class='warn'" in text
    assert "Grad-CAM for BACTERIAL" in text and "gradcam" not in text         # the method as the user knows it
    assert "Shortcut warning: 70 %" in text
    assert sanity_html() == ""


def test_view_and_dialog(qtbot) -> None:
    view = ModelCardView()
    qtbot.addWidget(view)
    assert "No model loaded" in view.plain_text()
    view.set_card(CARD)
    assert "Intended use" in view.plain_text() and view.card() is CARD
    view.set_sanity_results(_randomisation(0.1))
    assert "Passed: with the top 2 layers randomised" in view.plain_text()
    view.set_card(CARD)                                              # a new card drops the old results
    assert "Sanity check" not in view.plain_text()
    dialog = ModelCardDialog(None)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Model card"


def test_golden_model_card_dialog(qtbot) -> None:
    dialog = ModelCardDialog(CARD)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Model card — pneumonia3"
    dialog.setFixedSize(720, 760)
    dialog.show()
    qtbot.waitExposed(dialog)
    shot = qimage_to_rgb(dialog.grab())
    write_png(OUTPUT_DIR / "model_card_dialog.png", shot)
    browser = dialog.view.browser
    browser.verticalScrollBar().setValue(browser.verticalScrollBar().maximum() // 2)
    write_png(OUTPUT_DIR / "model_card_dialog_scrolled.png", qimage_to_rgb(dialog.grab()))
    assert_matches_golden("model_card_dialog", shot, mean_tol=3.0, max_fraction=0.01)


WARNINGS = (
    OodWarning("adult", "Adult patient (45 years): pneumonia3 was trained on children's radiographs; its "
                        "probabilities are not trustworthy for adults."),
    OodWarning("lateral", "Lateral view (LL): pneumonia3 was trained on frontal radiographs only."),
)


def test_banner_shows_and_hides(qtbot) -> None:
    banner = OodBanner()
    qtbot.addWidget(banner)
    banner.setFixedWidth(520)
    banner.show()
    banner.set_warnings(())
    assert not banner.isVisible()
    banner.set_warnings(WARNINGS)
    assert banner.isVisible() and banner.warnings() == WARNINGS
    assert "unlike the model's training data" in banner.title.text()
    assert "Adult patient (45 years)" in banner.text.text() and "Lateral view" in banner.text.text()
    with qtbot.waitSignal(banner.details_requested, timeout=1000):
        banner.details_button.click()
    banner.close_button.click()
    assert not banner.isVisible()
    banner.set_warnings((OodWarning("unsure", "pneumonia3 is unsure.", INFO),))
    assert banner.isVisible() and "Note on this result" in banner.title.text()


def test_golden_banner(qtbot) -> None:
    """In a layout above a stand-in canvas, as the window will hold it."""
    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    layout.setContentsMargins(0, 0, 0, 0)
    banner = OodBanner(host)
    layout.addWidget(banner)
    layout.addWidget(QLabel("image", host), 1)
    banner.set_warnings(WARNINGS)
    host.setFixedSize(560, 300)
    host.show()
    qtbot.waitExposed(host)
    assert banner.height() < 150                                    # the banner takes what its text needs
    shot = qimage_to_rgb(banner.grab())
    write_png(OUTPUT_DIR / "ood_banner.png", shot)
    assert_matches_golden("ood_banner", shot)


def test_sanity_results_with_maps(qtbot) -> None:
    """The on-demand sanity check in the card view: the maps side by side, then the verdicts."""
    from cxrviewer.core.xai.sanity import lung_mask
    from tests.unit.test_sanity import chest_phantom

    image, _ = chest_phantom(128)
    mask = lung_mask(image)
    real = np.zeros((6, 6), np.float32)
    real[2:4, 1] = 1.0
    real[2:4, 4] = 0.8
    randomised = np.random.default_rng(1).random((6, 6)).astype(np.float32)
    result = RandomisationResult("pneumonia3", 1, "BACTERIAL", "gradcam", "relu",
                                 ("predictions", "bn", "conv5_block16_2_conv"), 0.12, real, randomised)
    from cxrviewer.core.xai.sanity import heat_outside_mask

    lung = LungHeatResult(heat_outside_mask(real, mask), float(mask.mean()), mask)
    dialog = ModelCardDialog(CARD)
    qtbot.addWidget(dialog)
    dialog.view.set_sanity_results(result, lung)
    assert "Passed: with the top 3 layers randomised" in dialog.view.plain_text()
    assert "of the heat lies outside" in dialog.view.plain_text()
    dialog.setFixedSize(720, 760)
    dialog.show()
    qtbot.waitExposed(dialog)
    browser = dialog.view.browser
    browser.scrollToAnchor("")
    cursor = browser.document().find("Sanity check on this image")
    assert not cursor.isNull()
    browser.setTextCursor(cursor)
    browser.ensureCursorVisible()
    cursor.clearSelection()
    browser.setTextCursor(cursor)
    browser.verticalScrollBar().setValue(browser.verticalScrollBar().value() + 250)
    shot = qimage_to_rgb(dialog.grab())
    write_png(OUTPUT_DIR / "model_card_sanity.png", shot)
    jet_red = (shot[..., 0] > 150) & (shot[..., 1] < 60) & (shot[..., 2] < 60)
    assert jet_red.sum() > 50                                         # the maps are drawn
