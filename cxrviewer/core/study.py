"""Group opened files into Patient → Study → Series → Instance, reading DICOM headers only.

Non-DICOM files (PNG, JPEG, …) and files whose header cannot be read go into one flat
"Files" group; opening them later reports any problem.
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io import natural_sort_key, read_header
from cxrviewer.core.io._common import has_dicom_preamble, open_regular, raster_format
from cxrviewer.core.io.dicom import header_metadata
from cxrviewer.core.types import XrayImage

FILES_GROUP = "Files"
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Instance:
    """One file (all its frames)."""

    path: Path
    instance_number: int | None = None
    frame_count: int = 1
    sop_instance_uid: str = ""

    @property
    def label(self) -> str:
        frames = f" ({self.frame_count} frames)" if self.frame_count > 1 else ""
        return f"{self.path.name}{frames}"


@dataclass(frozen=True)
class Series:
    uid: str
    number: int | None
    description: str
    modality: str
    instances: tuple[Instance, ...]

    @property
    def label(self) -> str:
        number = f"Series {self.number}" if self.number is not None else "Series"
        parts = [number, self.description, f"({self.modality})" if self.modality else ""]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Study:
    uid: str
    date: str
    description: str
    accession_number: str
    series: tuple[Series, ...]

    @property
    def label(self) -> str:
        parts = [self.date, self.description or "Study"]
        if self.accession_number:
            parts.append(f"[{self.accession_number}]")
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Patient:
    patient_id: str
    name: str
    studies: tuple[Study, ...]

    @property
    def label(self) -> str:
        if self.name and self.patient_id:
            return f"{self.name} ({self.patient_id})"
        return self.name or self.patient_id or f"{UNKNOWN} patient"


@dataclass(frozen=True)
class StudyTree:
    """DICOM files grouped by patient, plus the non-DICOM files (the "Files" group)."""

    patients: tuple[Patient, ...]
    files: tuple[Instance, ...]

    def paths(self) -> list[Path]:
        """Every file in display order: patients, studies, series, instances, then Files."""
        ordered = [
            instance.path
            for patient in self.patients
            for study in patient.studies
            for series in study.series
            for instance in series.instances
        ]
        return ordered + [instance.path for instance in self.files]


# --------------------------------------------------------------------------- header reading

def _is_raster_file(path: Path) -> bool:
    try:
        with open_regular(path) as handle:
            head = handle.read(132)
    except (OSError, ImageLoadError):
        return False
    return raster_format(head) is not None and not has_dicom_preamble(head)


def header_of(item: str | os.PathLike[str] | XrayImage) -> tuple[Path, Mapping[str, str] | None]:
    """(path, DICOM metadata) for an item; metadata is None for non-DICOM or unreadable files."""
    if isinstance(item, XrayImage):
        is_dicom = item.metadata.get("Format") == "DICOM"
        return item.path, (item.metadata if is_dicom else None)
    path = Path(item)
    if _is_raster_file(path):
        return path, None
    try:
        return path, header_metadata(read_header(path))
    except ImageLoadError:
        return path, None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(float(text)) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- grouping

def group_images(items: Iterable[str | os.PathLike[str] | XrayImage]) -> StudyTree:
    """Group paths (headers read without pixels) or loaded images into a StudyTree."""
    tree: dict[tuple[str, str], dict[str, dict[str, list[tuple[Instance, Mapping[str, str]]]]]] = (
        defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    files: list[Instance] = []
    seen: set[Path] = set()
    for item in items:
        path, meta = header_of(item)
        if path in seen:
            continue
        seen.add(path)
        if meta is None:
            files.append(Instance(path))
            continue
        instance = Instance(
            path=path,
            instance_number=_int_or_none(meta.get("InstanceNumber")),
            frame_count=_int_or_none(meta.get("NumberOfFrames")) or 1,
            sop_instance_uid=meta.get("SOPInstanceUID", ""),
        )
        patient_key = (meta.get("PatientID", ""), meta.get("PatientName", ""))
        study_key = meta.get("StudyInstanceUID") or f"no-uid:{meta.get('StudyDate', '')}:{meta.get('StudyDescription', '')}"
        series_key = meta.get("SeriesInstanceUID") or (
            f"no-uid:{meta.get('SeriesNumber', '')}:{meta.get('SeriesDescription', '')}:{meta.get('Modality', '')}"
        )
        tree[patient_key][study_key][series_key].append((instance, meta))

    patients = [_make_patient(key, studies) for key, studies in tree.items()]
    patients.sort(key=lambda p: (p.name.lower(), p.patient_id))
    files.sort(key=lambda i: (natural_sort_key(i.path), str(i.path)))
    return StudyTree(patients=tuple(patients), files=tuple(files))


def _make_patient(key: tuple[str, str], studies: Mapping[str, Mapping[str, list[tuple[Instance, Mapping[str, str]]]]]) -> Patient:
    made = [_make_study(uid, series) for uid, series in studies.items()]
    made.sort(key=lambda s: (s.date, s.description.lower(), s.uid))
    return Patient(patient_id=key[0], name=key[1], studies=tuple(made))


def _make_study(uid: str, series: Mapping[str, list[tuple[Instance, Mapping[str, str]]]]) -> Study:
    first = next(iter(series.values()))[0][1]
    made = [_make_series(series_uid, members) for series_uid, members in series.items()]
    made.sort(key=lambda s: (s.number is None, s.number or 0, s.description.lower(), s.uid))
    return Study(
        uid="" if uid.startswith("no-uid:") else uid,
        date=first.get("StudyDate", ""),
        description=first.get("StudyDescription", ""),
        accession_number=first.get("AccessionNumber", ""),
        series=tuple(made),
    )


def _make_series(uid: str, members: list[tuple[Instance, Mapping[str, str]]]) -> Series:
    first = members[0][1]
    instances = sorted(
        (instance for instance, _ in members),
        key=lambda i: (i.instance_number is None, i.instance_number or 0, natural_sort_key(i.path), str(i.path)),
    )
    return Series(
        uid="" if uid.startswith("no-uid:") else uid,
        number=_int_or_none(first.get("SeriesNumber")),
        description=first.get("SeriesDescription", ""),
        modality=first.get("Modality", ""),
        instances=tuple(instances),
    )
