"""The label rules the viewer and the trainer share (one copy; `trainer` imports this module).

* Canonical class names (`NORMAL`, `PNEUMONIA`, `BACTERIAL`, `VIRAL`, `COVID-19`) and the
  folder-name → label mapping (`folder_label`: "no_finding" → NORMAL, "Virus" → VIRAL, …).
* The Kermany file-name rule: `personN_bacteria_M.jpeg` → BACTERIAL, `personN_virus_M.jpeg`
  → VIRAL (`kermany_subtype`); the patient id in Kermany names (`kermany_patient_id`:
  `person12_…` → PERSON12, `IM-0115-0001` → IM-0115, `NORMAL2-IM-1427-0001` → NORMAL2-IM-1427).
* Which classes sum to "pneumonia" (`pneumonia_labels`): for a model with NORMAL and only
  pneumonia classes (PNEUMONIA, BACTERIAL, VIRAL) the non-NORMAL ones; else none (e.g. a
  COVID-19 model is not a pneumonia model).

Pure functions over strings; no pixels, no paths read from disk.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

NORMAL: Final = "NORMAL"
PNEUMONIA: Final = "PNEUMONIA"
BACTERIAL: Final = "BACTERIAL"
VIRAL: Final = "VIRAL"
COVID: Final = "COVID-19"

PNEUMONIA_LABELS: Final = frozenset({PNEUMONIA, BACTERIAL, VIRAL})

# Folder name (upper case, runs of "_"/" " as "-") → canonical label.
FOLDER_LABELS: Final[dict[str, str]] = {
    "NORMAL": NORMAL,
    "NO-FINDING": NORMAL,
    "PNEUMONIA": PNEUMONIA,
    "BACTERIAL": BACTERIAL,
    "BACTERIA": BACTERIAL,
    "VIRAL": VIRAL,
    "VIRUS": VIRAL,
    "COVID-19": COVID,
    "COVID19": COVID,
    "COVID": COVID,
}

# personN_bacteria_M / personN_virus_M; group 3 (the image number) is optional for the subtype
_KERMANY_PNEUMONIA = re.compile(r"^(person\d+)_(bacteria|virus)_(\d+\b)?", re.IGNORECASE)
_KERMANY_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)


def folder_key(name: str) -> str:
    """A folder or label name as `FOLDER_LABELS` spells its keys: upper case, "_"/" " runs as "-"."""
    return re.sub(r"[\s_]+", "-", name.strip().upper())


def folder_label(name: str) -> str | None:
    """The canonical label a class folder (or a manifest's label) is named after, or None."""
    return FOLDER_LABELS.get(folder_key(name))


def kermany_subtype(file_name: str, *, numbered: bool = False) -> str | None:
    """BACTERIAL or VIRAL from a Kermany pneumonia file name, else None.

    `numbered=True` also asks for the image number (`person1_virus_7…`): the stricter form for
    names seen outside a PNEUMONIA folder, where only the full pattern is evidence enough.
    """
    match = _KERMANY_PNEUMONIA.match(file_name)
    if match is None or (numbered and match.group(3) is None):
        return None
    return BACTERIAL if match.group(2).lower() == "bacteria" else VIRAL


def kermany_patient_id(file_name: str) -> str | None:
    """The patient a Kermany file name belongs to (upper case), or None for other names."""
    for pattern in (_KERMANY_PNEUMONIA, _KERMANY_NORMAL):
        match = pattern.match(file_name)
        if match:
            return match.group(1).upper()
    return None


def pneumonia_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The labels whose probabilities add up to "pneumonia", in model order; () for models
    that are not NORMAL-vs-pneumonia (no NORMAL, nothing else, or another class such as COVID-19)."""
    others = tuple(label for label in labels if label != NORMAL)
    if NORMAL not in labels or not others or not set(others) <= PNEUMONIA_LABELS:
        return ()
    return others
