"""Find the models the viewer can offer: folders `<root>/<name>/` holding `model.json` + weights.

The root is, in order: the `root` argument, $CXRVIEWER_MODELS_DIR, the bundled
`resources/models`. Broken folders are skipped with a logged warning and reported as
`ModelProblem`s so the UI can say what is wrong instead of silently hiding a model.
Scanning reads JSON only; checksums are verified when a model is loaded (runtime.py).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cxrviewer.core.model.card import CARD_FILENAME, ModelCard, NamedByCard
from cxrviewer.core.resources import resource_path

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "CXRVIEWER_MODELS_DIR"
PREFERRED_MODEL = "pneumonia3"


@dataclass(frozen=True)
class RegisteredModel(NamedByCard):
    """A model folder whose card could be read (`name` is the card's)."""

    folder: Path
    card: ModelCard


@dataclass(frozen=True)
class ModelProblem:
    """A folder under the models root that cannot be offered, and why."""

    folder: Path
    message: str


class ModelScan(NamedTuple):
    models: list[RegisteredModel]
    problems: list[ModelProblem]


def models_root(root: str | Path | None = None) -> Path:
    """The folder that holds one sub-folder per model."""
    if root is not None:
        return Path(root)
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override)
    return resource_path("models")


def _read_entry(folder: Path) -> RegisteredModel:
    """Read and sanity-check one model folder; raise ValueError with a readable reason."""
    card_path = folder / CARD_FILENAME
    if not card_path.is_file():
        raise ValueError(f"no {CARD_FILENAME}")
    try:
        card = ModelCard.read(folder)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{CARD_FILENAME} is not valid JSON ({exc})") from exc
    except KeyError as exc:
        raise ValueError(f"{CARD_FILENAME} lacks the field {exc}") from exc
    except (TypeError, ValueError, OSError) as exc:
        raise ValueError(f"{CARD_FILENAME} could not be read ({exc})") from exc
    if not card.labels:
        raise ValueError(f"{CARD_FILENAME} lists no labels")
    if card.input_size <= 0:
        raise ValueError(f"{CARD_FILENAME} has an invalid input_size {card.input_size}")
    if not (folder / card.weights_file).is_file():
        raise ValueError(f"weights file {card.weights_file!r} is missing")
    return RegisteredModel(folder=folder, card=card)


def scan_models(root: str | Path | None = None) -> ModelScan:
    """All readable models under the root (sorted by folder name) and the problems found."""
    base = models_root(root)
    models: list[RegisteredModel] = []
    problems: list[ModelProblem] = []
    if not base.is_dir():
        log.warning("models folder %s does not exist", base)
        return ModelScan(models, problems)
    seen: dict[str, Path] = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            entry = _read_entry(folder)
        except ValueError as exc:
            problem = ModelProblem(folder, f"model folder {folder.name!r} skipped: {exc}")
            log.warning("%s", problem.message)
            problems.append(problem)
            continue
        if entry.name in seen:
            problem = ModelProblem(
                folder, f"model folder {folder.name!r} skipped: the name {entry.name!r} is already "
                f"used by {seen[entry.name].name!r}"
            )
            log.warning("%s", problem.message)
            problems.append(problem)
            continue
        seen[entry.name] = folder
        models.append(entry)
    return ModelScan(models, problems)


def list_models(root: str | Path | None = None) -> list[ModelCard]:
    """Cards of every usable model under the root (broken folders are logged and skipped)."""
    return [entry.card for entry in scan_models(root).models]


def default_model_name(cards: Sequence[ModelCard]) -> str | None:
    """"pneumonia3" when present, else the first model, else None."""
    names = [card.name for card in cards]
    if PREFERRED_MODEL in names:
        return PREFERRED_MODEL
    return names[0] if names else None


def resolve_model_folder(name_or_folder: str | Path, root: str | Path | None = None) -> Path:
    """A model folder from a registered model name or from a path to a model folder.

    Names win over relative paths. Raises LookupError with a readable message when
    neither matches.
    """
    scan = scan_models(root)
    for entry in scan.models:
        if entry.name == str(name_or_folder):
            return entry.folder
    candidate = Path(name_or_folder)
    if (candidate / CARD_FILENAME).is_file():
        return candidate
    for problem in scan.problems:
        if problem.folder.name == str(name_or_folder) or problem.folder == candidate:
            raise LookupError(problem.message)   # it is there, but broken: say why
    known = ", ".join(entry.name for entry in scan.models) or "none"
    raise LookupError(f"no model named {str(name_or_folder)!r} in {models_root(root)} (available: {known})")


def model_folder(name_or_folder: str | Path | None = None, root: str | Path | None = None) -> Path:
    """The one model lookup: a registered name, a model folder, or (None / "") the default model.

    LookupError with a one-line message when nothing matches (what was found, and why broken
    folders were skipped).
    """
    if name_or_folder:
        return resolve_model_folder(name_or_folder, root)
    scan = scan_models(root)
    name = default_model_name([entry.card for entry in scan.models])
    if name is None:
        details = "; ".join(problem.message for problem in scan.problems)
        raise LookupError(f"no AI models found in {models_root(root)}" + (f" ({details})" if details else ""))
    return next(entry.folder for entry in scan.models if entry.name == name)
