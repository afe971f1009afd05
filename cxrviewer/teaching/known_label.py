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
The folder names and the Kermany rule are `cxrviewer.core.labels`, the trainer's rules too.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cxrviewer.core.labels import FOLDER_LABELS, PNEUMONIA, folder_label, kermany_subtype

__all__ = ["FOLDER_LABELS", "KnownLabel", "known_label", "label_from_folder", "label_from_kermany_name",
           "label_from_manifest"]   # FOLDER_LABELS: teaching.practice still reads it from here

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class KnownLabel:
    """A label and where it came from (shown in "My reads" so a trainee can judge it)."""

    label: str          # canonical: NORMAL, BACTERIAL, VIRAL, PNEUMONIA, COVID-19, or a manifest's own
    source: str         # "folder", "folder + Kermany file name" or "manifest.csv"


def label_from_folder(path: str | Path) -> KnownLabel | None:
    """Rule 1: the parent folder is a class folder (with the Kermany subtype in PNEUMONIA)."""
    path = Path(path)
    label = folder_label(path.parent.name)
    if label is None:
        return None
    if label == PNEUMONIA:
        subtype = kermany_subtype(path.name)
        if subtype is not None:
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
            canonical = folder_label(label) or label
            return KnownLabel(canonical, MANIFEST_NAME)
    return None


def label_from_kermany_name(path: str | Path) -> KnownLabel | None:
    """Rule 3: a Kermany pneumonia file name outside a class folder."""
    subtype = kermany_subtype(Path(path).name, numbered=True)
    return None if subtype is None else KnownLabel(subtype, "Kermany file name")


def known_label(path: str | Path | None) -> KnownLabel | None:
    """The image's known label from its folder, a manifest or a Kermany file name, or None."""
    if path is None or not str(path):
        return None
    return label_from_folder(path) or label_from_manifest(path) or label_from_kermany_name(path)
