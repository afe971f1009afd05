"""Training-data mismatch warnings: DICOM header, image shape/colour, and the model's uncertainty."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cxrviewer.core.model.card import ModelCard
from cxrviewer.teaching.ood import (
    INFO,
    WARNING,
    card_population,
    card_shortcut_risks,
    image_warnings,
    metadata_warnings,
    normalised_entropy,
    parse_age_years,
    patient_age_years,
    prediction_warnings,
    trained_on_children,
    training_data_warnings,
)
from tests.model_factory import make_xray
from tests.shared_data import requires_shared, shared_dir

PEDIATRIC_LIMITATION = ("Trained only on pediatric (age 1-5) AP radiographs from one hospital: adults, lateral "
                        "views ... are outside its training data.")


def card(**extra) -> ModelCard:
    return ModelCard(name="pneumonia3", labels=("NORMAL", "BACTERIAL", "VIRAL"), input_size=192,
                     backbone="densenet121", cam_layer="relu", weights_file="model.keras", weights_sha256="0" * 64,
                     extra=extra)


PEDIATRIC = card(known_limitations=[PEDIATRIC_LIMITATION])
ADULT = card(training_data={"sources": {"nih": "NIH ChestX-ray14 adult radiographs"}})


def codes(warnings) -> list[str]:
    return [w.code for w in warnings]


@pytest.mark.parametrize(("text", "years"), [
    ("045Y", 45), ("006M", 0.5), ("010W", 70 / 365.25), ("003D", 3 / 365.25), ("12", 12), (" 017Y ", 17),
])
def test_parse_dicom_age(text: str, years: float) -> None:
    assert parse_age_years(text) == pytest.approx(years)


@pytest.mark.parametrize("text", ["", "unknown", "45 years", "Y", None])
def test_unparseable_ages_are_unknown(text) -> None:
    assert parse_age_years(text) is None


def test_age_from_birth_and_study_dates() -> None:
    assert patient_age_years({"PatientBirthDate": "2000-01-01", "StudyDate": "2030-01-02"}) == pytest.approx(30, abs=0.01)
    assert patient_age_years({"PatientBirthDate": "20200101", "StudyDate": "20190101"}) is None     # inconsistent
    assert patient_age_years({"PatientAge": "004Y", "PatientBirthDate": "19500101", "StudyDate": "20240101"}) == 4


def test_the_card_says_whether_a_model_was_trained_on_children() -> None:
    assert trained_on_children(PEDIATRIC)
    assert trained_on_children(card(population="pediatric"))
    assert trained_on_children(card(training_data={"sources": {"chest_xray": "Guangzhou ... Children aged 1-5"}}))
    assert not trained_on_children(ADULT)
    assert not trained_on_children(card())


COVID3_SOURCES = {
    "chest_xray": "Guangzhou Women and Children's Medical Center pediatric chest radiographs. Children aged 1-5.",
    "covid19": "Hannover Medical School COVID-19 Image Repository, adults.",
    "nih_adult_normal": "NIH ChestX-ray14 'No Finding' adult radiographs.",
}


def test_the_structured_population_field_decides_over_the_cards_text() -> None:
    # covid3-like: its text mentions children, but it also trained on adults ("mixed").
    mixed = card(training_data={"sources": COVID3_SOURCES, "population": "mixed"},
                 known_limitations=[PEDIATRIC_LIMITATION])
    assert card_population(mixed) == "mixed"
    assert not trained_on_children(mixed)
    assert metadata_warnings({"PatientAge": "062Y"}, mixed) == ()
    # pneumonia3-like: children only.
    pediatric = card(training_data={"sources": {"chest_xray": COVID3_SOURCES["chest_xray"]},
                                    "population": "Pediatric"})
    assert card_population(pediatric) == "pediatric"
    assert codes(metadata_warnings({"PatientAge": "062Y"}, pediatric)) == ["adult"]
    # "adult" wins over a text that mentions children too.
    adult = card(training_data={"sources": COVID3_SOURCES, "population": "adult"})
    assert not trained_on_children(adult)


def test_a_card_without_the_field_keeps_the_text_rule() -> None:
    old_covid3 = card(training_data={"sources": COVID3_SOURCES})
    assert card_population(old_covid3) is None
    assert codes(metadata_warnings({"PatientAge": "062Y"}, old_covid3)) == ["adult"]   # the old behaviour
    unknown = card(training_data={"sources": COVID3_SOURCES, "population": "teenagers"})
    assert card_population(unknown) is None and trained_on_children(unknown)          # unknown value: text rule


def test_adult_on_a_pediatric_model() -> None:
    warnings = metadata_warnings({"PatientAge": "045Y"}, PEDIATRIC)
    assert codes(warnings) == ["adult"]
    assert "45 years" in warnings[0].message and warnings[0].severity == WARNING
    assert metadata_warnings({"PatientAge": "015Y"}, PEDIATRIC) == ()
    assert metadata_warnings({"PatientAge": "045Y"}, ADULT) == ()           # adult model: adults are fine
    assert "Measured" not in warnings[0].message                            # no external check in this card


def test_the_adult_warning_quotes_the_cards_measured_check_on_adults() -> None:
    measured = card(known_limitations=[PEDIATRIC_LIMITATION], external_checks=[
        {"data": "official_test", "images": 624, "negatives": 234, "negatives_called_positive": 20,
         "positive_call": "pneumonia"},
        {"data": "adult_mixed", "images": 119, "labels": {"COVID-19": 74, "NORMAL": 24, "VIRAL": 21},
         "negatives": 45, "negatives_called_positive": 11, "positive_call": "pneumonia"},
        {"data": "nih_adult_normal", "images": 100, "labels": {"NORMAL": 100}, "negatives": 100,
         "negatives_called_positive": 30, "positive_call": "pneumonia"},
    ])
    message = metadata_warnings({"PatientAge": "062Y"}, measured)[0].message
    assert message.endswith("Measured: it called 30 of 100 adult normal radiographs it never saw pneumonia.")
    broken = card(known_limitations=[PEDIATRIC_LIMITATION], external_checks=[{"data": "adult", "negatives": "x"}, 7])
    assert "Measured" not in metadata_warnings({"PatientAge": "062Y"}, broken)[0].message


def test_the_bundled_pneumonia3_card_carries_its_adult_check() -> None:
    from pathlib import Path

    bundled = ModelCard.read(Path(__file__).resolve().parents[2] / "resources" / "models" / "pneumonia3")
    assert "adult normal radiographs it never saw" in metadata_warnings({"PatientAge": "062Y"}, bundled)[0].message


def test_view_body_part_and_modality() -> None:
    metadata = {"ViewPosition": "LL", "BodyPartExamined": "HAND", "Modality": "MR"}
    assert codes(metadata_warnings(metadata, ADULT)) == ["lateral", "body_part", "modality"]
    fine = {"ViewPosition": "PA", "BodyPartExamined": "CHEST", "Modality": "DX"}
    assert metadata_warnings(fine, ADULT) == ()
    assert metadata_warnings({}, PEDIATRIC) == ()                           # raster files: no header, no warning


def test_image_shape_and_colour() -> None:
    square = make_xray(64)
    assert image_warnings(square, ADULT) == ()
    long = dataclasses.replace(square, pixels=np.zeros((50, 200), np.float32))
    assert codes(image_warnings(long, ADULT)) == ["aspect_ratio"]
    coloured = dataclasses.replace(square, notes=("colour image shown in gray",))
    assert codes(image_warnings(coloured, ADULT)) == ["colour"]
    palette = dataclasses.replace(square, metadata={"PhotometricInterpretation": "PALETTE COLOR"})
    assert codes(image_warnings(palette, ADULT)) == ["colour"]


def test_entropy_and_the_unsure_note() -> None:
    assert normalised_entropy([1.0, 0.0, 0.0]) == pytest.approx(0.0)
    assert normalised_entropy([1 / 3] * 3) == pytest.approx(1.0)
    assert normalised_entropy([0.5]) == 0.0
    assert prediction_warnings([0.9, 0.05, 0.05], ADULT) == ()
    unsure = prediction_warnings([0.36, 0.33, 0.31], ADULT)
    assert codes(unsure) == ["unsure"] and unsure[0].severity == INFO


def test_all_checks_together() -> None:
    image = dataclasses.replace(make_xray(64), metadata={"PatientAge": "060Y", "ViewPosition": "LAT"})
    assert codes(training_data_warnings(image, PEDIATRIC)) == ["adult", "lateral"]
    assert codes(training_data_warnings(image, PEDIATRIC, [0.34, 0.33, 0.33])) == ["adult", "lateral", "unsure"]


def test_shortcut_risks_from_mixed_sources() -> None:
    mixed = card(training_data={"sources": {"covid19": "Hannover adults", "chest_xray": "Guangzhou children"}},
                 shortcut_warnings=["Text markers differ between sources."])
    risks = card_shortcut_risks(mixed)
    assert risks[0] == "Text markers differ between sources."
    assert "2 sources (covid19, chest_xray)" in risks[1]
    assert card_shortcut_risks(ADULT) == ()


def test_the_sample_card_written_by_the_trainer_is_pediatric() -> None:
    from trainer.export import KNOWN_LIMITATIONS

    assert trained_on_children(card(known_limitations=KNOWN_LIMITATIONS["pneumonia3"]))


@requires_shared
def test_real_dicom_files() -> None:
    from cxrviewer.core.io import load_image

    folder = shared_dir() / "dicom"
    extremity = load_image(folder / "cr_extremity_mono1_j2k_lossless.dcm")
    assert "body_part" in codes(training_data_warnings(extremity, PEDIATRIC))
    ultrasound = load_image(folder / "us_rgb_two_frames.dcm")
    assert {"modality", "colour"} <= set(codes(training_data_warnings(ultrasound, PEDIATRIC)))
    chest = load_image(folder / "cr_chest_mono2_jpeg_baseline.dcm")
    assert not {"body_part", "modality", "lateral", "colour"} & set(codes(training_data_warnings(chest, PEDIATRIC)))
