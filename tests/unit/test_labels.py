"""The one label rule set (cxrviewer.core.labels) and that the viewer and the trainer use it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core import labels
from cxrviewer.core.labels import (
    BACTERIAL,
    COVID,
    NORMAL,
    PNEUMONIA,
    VIRAL,
    folder_key,
    folder_label,
    kermany_patient_id,
    kermany_subtype,
    pneumonia_labels,
)


@pytest.mark.parametrize(("name", "expected"), [
    ("person12_bacteria_47.jpeg", BACTERIAL),
    ("PERSON3_VIRUS_9.JPEG", VIRAL),
    ("person1_virus_", VIRAL),          # the subtype needs no image number inside a PNEUMONIA folder
    ("person_bacteria_1.jpeg", None),   # no patient number
    ("IM-0115-0001.jpeg", None),
    ("bacteria.png", None),
    ("xperson1_bacteria_1.jpeg", None),
])
def test_kermany_subtype(name, expected):
    assert kermany_subtype(name) == expected


def test_kermany_subtype_numbered_needs_the_image_number():
    assert kermany_subtype("person1_virus_7.jpeg", numbered=True) == VIRAL
    assert kermany_subtype("person1_virus_x.jpeg", numbered=True) is None
    assert kermany_subtype("person1_virus_x.jpeg") == VIRAL


@pytest.mark.parametrize(("name", "expected"), [
    ("person12_bacteria_47.jpeg", "PERSON12"),
    ("IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
    ("scan.png", None),
])
def test_kermany_patient_id(name, expected):
    assert kermany_patient_id(name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("NORMAL", NORMAL), ("normal", NORMAL), ("No_Finding", NORMAL), ("no finding", NORMAL),
    ("PNEUMONIA", PNEUMONIA), ("Bacteria", BACTERIAL), ("virus", VIRAL), ("Viral", VIRAL),
    ("covid", COVID), ("COVID_19", COVID), ("Covid-19", COVID),
    ("2019-03-01", None), ("Smith^John", None), ("", None),
])
def test_folder_label(name, expected):
    assert folder_label(name) == expected


def test_folder_key_spells_the_mapping_keys():
    assert folder_key("  no _ finding ") == "NO-FINDING"
    assert all(folder_key(key) == key for key in labels.FOLDER_LABELS)


@pytest.mark.parametrize(("model_labels", "expected"), [
    (("NORMAL", "BACTERIAL", "VIRAL"), ("BACTERIAL", "VIRAL")),
    (("NORMAL", "PNEUMONIA"), ("PNEUMONIA",)),
    (("VIRAL", "NORMAL", "BACTERIAL"), ("VIRAL", "BACTERIAL")),   # model order kept
    (("COVID-19", "NORMAL", "VIRAL"), ()),      # a COVID-19 model is not a pneumonia model
    (("BACTERIAL", "VIRAL"), ()),               # no NORMAL
    (("NORMAL",), ()),
    (("CAT", "DOG"), ()),
])
def test_pneumonia_labels(model_labels, expected):
    assert pneumonia_labels(model_labels) == expected


# ------------------------------------------------------------ every copy calls the one rule set

def test_model_card_and_model_call_sum_the_same_classes():
    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.core.model_call import PNEUMONIA_RULE, model_call

    for model_labels in (("NORMAL", "BACTERIAL", "VIRAL"), ("COVID-19", "NORMAL", "VIRAL"), ("NORMAL", "PNEUMONIA")):
        card = ModelCard(name="m", labels=model_labels, input_size=224, backbone="b", cam_layer="c",
                         weights_file="w", weights_sha256="0" * 64)
        assert card.pneumonia_labels == pneumonia_labels(model_labels)
        call = model_call(model_labels, [1 / len(model_labels)] * len(model_labels), 0.5)
        assert (call.kind == PNEUMONIA_RULE) == bool(pneumonia_labels(model_labels))


def test_trainer_pneumonia_score_sums_the_same_classes():
    from trainer.metrics import pneumonia_score

    probabilities = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    score = pneumonia_score(probabilities, ["VIRAL", "NORMAL", "BACTERIAL"])
    np.testing.assert_allclose(score, [0.5, 0.9])   # VIRAL + BACTERIAL
    assert pneumonia_score(probabilities, ["COVID-19", "NORMAL", "VIRAL"]) is None


def test_trainer_and_viewer_read_kermany_names_alike(tmp_path: Path):
    from cxrviewer.teaching.known_label import known_label
    from trainer.data import discover_folder_tree, kermany_label, patient_id_from_name

    names = {"NORMAL": ["IM-0001-0001.jpeg", "NORMAL2-IM-0002-0001.jpeg"],
             "PNEUMONIA": ["person1_bacteria_1.jpeg", "person2_virus_3.jpeg"]}
    for folder, files in names.items():
        (tmp_path / folder).mkdir()
        for name in files:
            (tmp_path / folder / name).write_bytes(b"x")
    samples = discover_folder_tree(tmp_path, task="pneumonia3")
    assert {s.path.name: s.label for s in samples} == {
        "IM-0001-0001.jpeg": NORMAL, "NORMAL2-IM-0002-0001.jpeg": NORMAL,
        "person1_bacteria_1.jpeg": BACTERIAL, "person2_virus_3.jpeg": VIRAL,
    }
    for sample in samples:
        viewer = known_label(sample.path)
        assert viewer is not None and viewer.label == sample.label
        assert kermany_label(sample.path, sample.path.parent.name, "pneumonia3") == sample.label
        assert patient_id_from_name(sample.path) == kermany_patient_id(sample.path.name)
