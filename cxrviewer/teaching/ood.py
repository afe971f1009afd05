"""Does this image look unlike the model's training data? Warnings for the model-card banner.

Checks, each cheap and explainable to a trainee:

* DICOM header (when present): PatientAge (or StudyDate − PatientBirthDate) above
  `PEDIATRIC_MAX_AGE_YEARS` for a model trained on children; ViewPosition lateral;
  BodyPartExamined not a chest; Modality not CR/DX (projection radiography).
* The image itself: a colour image, or an aspect ratio far from a chest film. The model
  squeezes the whole image to a square (see `core/model/preprocessing.py`); chest films and
  the training images are about 1:1 to 1.4:1, so beyond `MAX_ASPECT_RATIO` anatomy is
  distorted more than anything the model saw.
* The prediction: the normalised entropy of the (temperature-scaled) probabilities. The
  maximum softmax probability is the standard baseline out-of-distribution detector
  (Hendrycks & Gimpel, ICLR 2017); entropy is its smooth version. It is weak — hard
  in-distribution cases are uncertain too — so it is reported as "the model is unsure",
  with the reason, never as proof that the image is out of distribution.

Whether a model was trained on children only is read from its card's structured field
`training_data.population` (`CARD_POPULATIONS`: "pediatric", "adult" or "mixed"; only
"pediatric" raises the adult-patient warning). A card without that field falls back to its
text: the training-data descriptions and known limitations mention "pediatric"/"children"
(as older `trainer/export.py` cards wrote them), or a top-level `"population"`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.types import XrayImage

PEDIATRIC_MAX_AGE_YEARS = 16.0
LATERAL_VIEWS = frozenset({"LAT", "LL", "RL", "LATERAL", "LLD", "RLD"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "LUNGS", "CHEST_LUNG"})
RADIOGRAPHY_MODALITIES = frozenset({"CR", "DX"})
MAX_ASPECT_RATIO = 1.8          # long side / short side
UNSURE_ENTROPY = 0.9            # normalised entropy (0 = certain, 1 = uniform) at or above this

WARNING = "warning"
INFO = "info"

PEDIATRIC = "pediatric"
CARD_POPULATIONS = frozenset({PEDIATRIC, "adult", "mixed"})   # values of training_data.population

_PEDIATRIC_WORDS = re.compile(r"\b(pa?ediatric|children|child|infants?)\b", re.IGNORECASE)
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])?\s*$", re.IGNORECASE)
_AGE_UNITS_IN_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


@dataclass(frozen=True)
class OodWarning:
    """One reason the image may be unlike the training data. `code` is stable (for tests, logs)."""

    code: str           # adult | lateral | body_part | modality | colour | aspect_ratio | unsure
    message: str
    severity: str = WARNING


# ---------------------------------------------------------------------------- the card

def _card_text(card: ModelCard) -> str:
    extra = card.extra
    parts: list[str] = [str(extra.get("population", ""))]
    training = extra.get("training_data")
    if isinstance(training, Mapping):
        sources = training.get("sources")
        if isinstance(sources, Mapping):
            parts.extend(str(v) for v in sources.values())
        elif sources:
            parts.append(str(sources))
    limitations = extra.get("known_limitations")
    if isinstance(limitations, (list, tuple)):
        parts.extend(str(item) for item in limitations)
    return " ".join(parts)


def _adult_evidence(card: ModelCard) -> str:
    """' Measured: …' from the card's external check on adult normals (a set of NORMAL images only), if any."""
    for check in card.extra.get("external_checks") or ():
        if not isinstance(check, Mapping) or "adult" not in str(check.get("data", "")).lower():
            continue
        labels = check.get("labels")
        if not isinstance(labels, Mapping) or set(labels) != {"NORMAL"}:
            continue                                # its negatives are not all normals
        called, total, positive = (check.get(k) for k in ("negatives_called_positive", "negatives", "positive_call"))
        if isinstance(called, int) and isinstance(total, int) and total and positive:
            return f" Measured: it called {called} of {total} adult normal radiographs it never saw {positive}."
    return ""


def card_population(card: ModelCard) -> str | None:
    """The card's structured `training_data.population` (one of `CARD_POPULATIONS`), or None."""
    training = card.extra.get("training_data")
    value = training.get("population") if isinstance(training, Mapping) else None
    population = str(value or "").strip().lower()
    return population if population in CARD_POPULATIONS else None


def trained_on_children(card: ModelCard) -> bool:
    """True when the card says the training images were of children only.

    The structured field decides when present (a "mixed" model that also saw adults is not
    pediatric, however often its text mentions children); otherwise the card's text does.
    """
    population = card_population(card)
    if population is not None:
        return population == PEDIATRIC
    return bool(_PEDIATRIC_WORDS.search(_card_text(card)))


# ---------------------------------------------------------------------------- header

def parse_age_years(value: str) -> float | None:
    """DICOM Age String ('045Y', '006M', '010W', '003D', or a bare number of years) → years."""
    match = _AGE.match(str(value or ""))
    if not match:
        return None
    return int(match.group(1)) * _AGE_UNITS_IN_YEARS[(match.group(2) or "Y").upper()]


def _parse_date(value: str) -> date | None:
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def patient_age_years(metadata: Mapping[str, Any]) -> float | None:
    """Age at the study from PatientAge, else from StudyDate − PatientBirthDate; None if unknown."""
    age = parse_age_years(str(metadata.get("PatientAge", "")))
    if age is not None:
        return age
    birth = _parse_date(str(metadata.get("PatientBirthDate", "")))
    study = _parse_date(str(metadata.get("StudyDate", "") or metadata.get("AcquisitionDate", "")))
    if birth is None or study is None or study < birth:
        return None
    return (study - birth).days / 365.25


def _value(metadata: Mapping[str, Any], key: str) -> str:
    return str(metadata.get(key, "") or "").strip().upper()


def metadata_warnings(metadata: Mapping[str, Any], card: ModelCard) -> tuple[OodWarning, ...]:
    """Header checks: adult on a pediatric model, lateral view, not a chest, not CR/DX."""
    out: list[OodWarning] = []
    if trained_on_children(card):
        age = patient_age_years(metadata)
        if age is not None and age > PEDIATRIC_MAX_AGE_YEARS:
            out.append(OodWarning(
                "adult",
                f"Adult patient ({age:.0f} years): {card.name} was trained on children's radiographs; "
                "its probabilities are not trustworthy for adults." + _adult_evidence(card),
            ))
    view = _value(metadata, "ViewPosition")
    if view in LATERAL_VIEWS:
        out.append(OodWarning(
            "lateral", f"Lateral view ({view}): {card.name} was trained on frontal radiographs only."))
    body_part = _value(metadata, "BodyPartExamined")
    if body_part and body_part not in CHEST_BODY_PARTS:
        out.append(OodWarning(
            "body_part", f"Body part {body_part.title()}: {card.name} was trained on chest radiographs only."))
    modality = _value(metadata, "Modality")
    if modality and modality not in RADIOGRAPHY_MODALITIES:
        out.append(OodWarning(
            "modality", f"Modality {modality}: {card.name} was trained on radiographs (CR/DX) only."))
    return tuple(out)


# ---------------------------------------------------------------------------- image

def image_warnings(image: XrayImage, card: ModelCard) -> tuple[OodWarning, ...]:
    """Pixel checks: colour source, extreme aspect ratio."""
    out: list[OodWarning] = []
    photometric = str(image.metadata.get("PhotometricInterpretation", image.photometric)).upper()
    coloured = any("colour" in note.lower() or "color" in note.lower() for note in image.notes)
    if coloured or (photometric and not photometric.startswith("MONOCHROME")):
        out.append(OodWarning(
            "colour", f"Colour image: {card.name} was trained on grayscale radiographs."))
    height, width = image.shape
    if min(height, width) > 0:
        ratio = max(height, width) / min(height, width)
        if ratio > MAX_ASPECT_RATIO:
            out.append(OodWarning(
                "aspect_ratio",
                f"Unusual shape ({width}×{height}, {ratio:.1f}:1): the model squeezes the whole image to a "
                "square, so anatomy is distorted far more than in its training images.",
            ))
    return tuple(out)


# ---------------------------------------------------------------------------- prediction

def normalised_entropy(probabilities: Sequence[float]) -> float:
    """Shannon entropy / log(n): 0 when one class has all the mass, 1 when all are equal."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    if p.size < 2 or p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / math.log(p.size))


def prediction_warnings(probabilities: Sequence[float], card: ModelCard) -> tuple[OodWarning, ...]:
    """'The model is unsure' when the probabilities are spread out (see the module docstring)."""
    if len(probabilities) < 2:
        return ()
    entropy = normalised_entropy(probabilities)
    if entropy < UNSURE_ENTROPY:
        return ()
    return (OodWarning(
        "unsure",
        f"{card.name} is unsure (entropy {entropy:.2f} of a maximum 1): its probabilities are spread over "
        "the classes. Images unlike the training data often look like this, but so do hard cases.",
        INFO,
    ),)


def training_data_warnings(
    image: XrayImage, card: ModelCard, probabilities: Sequence[float] | None = None
) -> tuple[OodWarning, ...]:
    """Every check that applies: header, image, and (when given) the prediction."""
    found = metadata_warnings(image.metadata, card) + image_warnings(image, card)
    if probabilities is not None:
        found += prediction_warnings(probabilities, card)
    return found


# ---------------------------------------------------------------------------- the card itself

def card_shortcut_risks(card: ModelCard) -> tuple[str, ...]:
    """Shortcut risks that follow from how a model's training data was put together.

    Recorded by the trainer as `shortcut_warning` (one string; a `shortcut_warnings` list is
    accepted too), plus one inferred here: when the
    training data come from more than one source (e.g. pediatric Guangzhou images next to
    adult COVID-19 images), classes and sources can coincide and a model can learn "which
    hospital" or "child vs adult" instead of disease.
    """
    extra = card.extra
    risks: list[str] = []
    for key in ("shortcut_warning", "shortcut_warnings"):
        value = extra.get(key)
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
        risks.extend(str(item) for item in items if str(item).strip() and str(item) not in risks)
    training = extra.get("training_data")
    sources = training.get("sources") if isinstance(training, Mapping) else None
    if isinstance(sources, Mapping) and len(sources) > 1:
        names = ", ".join(str(name) for name in sources)
        risks.append(
            f"Trained on images from {len(sources)} sources ({names}). If a class comes mostly from one "
            "source, the model can learn the source (hospital, age group, scanner, text markers) instead of "
            "the disease; check its heat maps and the sanity check."
        )
    return tuple(risks)
