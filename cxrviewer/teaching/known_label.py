"""The known (ground-truth) label of an image that comes from a labelled folder.

Teaching sets are usually laid out as class folders — `…/NORMAL/x.jpeg`,
`…/PNEUMONIA/person12_virus_39.jpeg`, `…/COVID-19/abc.jpg` — sometimes with a
`manifest.csv` (`path,label,…`) beside them. The "My reads" view compares a trainee's call
with this label. Rules, first match wins:

1. The parent folder's name is a class name (case-insensitive, see `FOLDER_LABELS`).
   In a `PNEUMONIA` folder the Kermany file name gives the subtype:
   `personN_bacteria_M.jpeg` → BACTERIAL, `personN_virus_M.jpeg` → VIRAL (else PNEUMONIA).
2. A `manifest.csv` in the parent or grandparent folder lists the file with a label.
3. A Kermany file name anywhere (`personN_bacteria_M.jpeg` → BACTERIAL, `personN_virus_M.jpeg`
   → VIRAL): copied teaching files keep their label although the class folder is gone. The
   pattern (person + number + bacteria/virus + number) is specific enough not to be a guess.

Anything else has no known label (None): a folder named after a patient or a date is never
mistaken for a label. Nothing here reads pixels or patient data; only the path.
(The Kermany file-name pattern mirrors `trainer/data.py`, which core may not import.)
"""
from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"

# Folder name (upper case, "_"/" " as "-") → canonical label.
FOLDER_LABELS: dict[str, str] = {
    "NORMAL": "NORMAL",
    "NO-FINDING": "NORMAL",
    "PNEUMONIA": "PNEUMONIA",
    "BACTERIAL": "BACTERIAL",
    "BACTERIA": "BACTERIAL",
    "VIRAL": "VIRAL",
    "VIRUS": "VIRAL",
    "COVID-19": "COVID-19",
    "COVID19": "COVID-19",
    "COVID": "COVID-19",
}

_KERMANY_SUBTYPE = re.compile(r"^person\d+_(bacteria|virus)_", re.IGNORECASE)
_KERMANY_NAME = re.compile(r"^person\d+_(bacteria|virus)_\d+\b", re.IGNORECASE)


@dataclass(frozen=True)
class KnownLabel:
    """A label and where it came from (shown in "My reads" so a trainee can judge it)."""

    label: str          # canonical: NORMAL, BACTERIAL, VIRAL, PNEUMONIA, COVID-19, or a manifest's own
    source: str         # "folder", "folder + Kermany file name" or "manifest.csv"


def _canonical_folder(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().upper())


def label_from_folder(path: str | Path) -> KnownLabel | None:
    """Rule 1: the parent folder is a class folder (with the Kermany subtype in PNEUMONIA)."""
    path = Path(path)
    label = FOLDER_LABELS.get(_canonical_folder(path.parent.name))
    if label is None:
        return None
    if label == "PNEUMONIA":
        match = _KERMANY_SUBTYPE.match(path.name)
        if match:
            subtype = "BACTERIAL" if match.group(1).lower() == "bacteria" else "VIRAL"
            return KnownLabel(subtype, "folder + Kermany file name")
    return KnownLabel(label, "folder")


@lru_cache(maxsize=32)
def _manifest_rows(manifest: Path, mtime_ns: int) -> dict[Path, str]:
    """path → label of one manifest (cached per file version)."""
    rows: dict[Path, str] = {}
    try:
        with open(manifest, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                return rows
            for row in reader:
                raw_path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
                if raw_path and label:
                    candidate = Path(raw_path)
                    if not candidate.is_absolute():
                        candidate = manifest.parent / candidate
                    rows[candidate.resolve()] = label
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        log.warning("could not read %s for known labels: %s", manifest, exc)
    return rows


def label_from_manifest(path: str | Path) -> KnownLabel | None:
    """Rule 2: a manifest.csv in the parent or grandparent folder lists this file."""
    resolved = Path(path).resolve()
    for folder in (resolved.parent, resolved.parent.parent):
        manifest = folder / MANIFEST_NAME
        try:
            mtime = manifest.stat().st_mtime_ns
        except OSError:
            continue
        label = _manifest_rows(manifest, mtime).get(resolved)
        if label:
            canonical = FOLDER_LABELS.get(_canonical_folder(label), label)
            return KnownLabel(canonical, MANIFEST_NAME)
    return None


def label_from_kermany_name(path: str | Path) -> KnownLabel | None:
    """Rule 3: a Kermany pneumonia file name outside a class folder."""
    match = _KERMANY_NAME.match(Path(path).name)
    if not match:
        return None
    return KnownLabel("BACTERIAL" if match.group(1).lower() == "bacteria" else "VIRAL", "Kermany file name")


def known_label(path: str | Path | None) -> KnownLabel | None:
    """The image's known label from its folder, a manifest or a Kermany file name, or None."""
    if path is None or not str(path):
        return None
    return label_from_folder(path) or label_from_manifest(path) or label_from_kermany_name(path)
