"""The bundled models themselves: checksum, card, and behaviour on held-out real images.

These run the real DenseNet (slow-ish). The accuracy floors are regression guards set well
below the figures in each model card, measured on images of the card's own internal test
split (patients the model never trained on), read from ../shared/data.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.shared_data import requires_shared, shared_dir

pytestmark = [pytest.mark.slow]
MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


def _bundled(name: str) -> Path:
    folder = MODELS / name
    if not (folder / "model.json").exists():
        pytest.skip(f"bundled model {name} not present in resources/models")
    return folder


@pytest.mark.parametrize("name", ["pneumonia3", "covid3"])
def test_card_describes_the_weights(name: str) -> None:
    from cxrviewer.core.model.card import ModelCard, sha256_file

    folder = _bundled(name)
    card = ModelCard.read(folder)
    assert sha256_file(folder / card.weights_file) == card.weights_sha256
    raw = json.loads((folder / "model.json").read_text())
    assert raw["not_for_clinical_use"] is True
    assert raw["known_limitations"] and raw["intended_use"]
    assert raw["metrics"]["test"]["n"] > 0
    assert (folder / "split.csv").exists() and (folder / "evaluation" / "report.md").exists()


def _held_out(folder: Path, per_label: int) -> list[tuple[Path, str]]:
    data = shared_dir() / "data"
    rows = list(csv.DictReader(open(folder / "split.csv", newline="")))
    picked: dict[str, list[tuple[Path, str]]] = {}
    for row in rows:
        if row["split"] == "test" and len(picked.setdefault(row["label"], [])) < per_label:
            picked[row["label"]].append((data / row["path"], row["label"]))
    return [item for items in picked.values() for item in items]


@requires_shared
def test_pneumonia3_separates_pneumonia_from_normal_on_held_out_images() -> None:
    from cxrviewer.core.io import load_image
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

    folder = _bundled("pneumonia3")
    engine = InferenceEngine(load_classifier(folder))
    samples = _held_out(folder, per_label=12)
    inputs = np.stack([model_input(load_image(path), engine.input_size) for path, _ in samples])
    probabilities = engine.predict_many(inputs)
    normal = engine.labels.index("NORMAL")
    pneumonia_probability = 1.0 - probabilities[:, normal]
    truth = np.array([label != "NORMAL" for _, label in samples])
    accuracy = float(((pneumonia_probability >= engine.card.operating_threshold) == truth).mean())
    assert accuracy >= 0.75, f"pneumonia vs normal accuracy {accuracy:.2f} on {len(samples)} held-out images"


@pytest.mark.parametrize(("name", "population"), [("pneumonia3", "pediatric"), ("covid3", "mixed")])
def test_card_says_who_the_training_images_came_from(name: str, population: str) -> None:
    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.teaching.ood import card_population, trained_on_children

    card = ModelCard.read(_bundled(name))
    assert card_population(card) == population
    assert trained_on_children(card) == (population == "pediatric")   # the adult-patient banner follows


@requires_shared
def test_pneumonia3_answers_a_brightened_film_as_it_answers_the_film() -> None:
    """The bundled pediatric model equalises its input (card: preprocessing.standardisation)."""
    from cxrviewer.core.io import load_image
    from cxrviewer.core.model.preprocessing import model_image, to_model_array
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

    folder = _bundled("pneumonia3")
    engine = InferenceEngine(load_classifier(folder))
    assert "histogram equalisation" in engine.card.preprocessing["standardisation"]
    films = np.stack([model_image(load_image(path), engine.input_size) for path, _ in _held_out(folder, per_label=3)])
    brighter = (255.0 * (films / 255.0) ** 0.6).astype(np.uint8)
    plain, bright = engine.predict_many(to_model_array(films)), engine.predict_many(to_model_array(brighter))
    assert np.abs(plain - bright).max() < 0.1
