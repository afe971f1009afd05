"""Find labelled images, check their integrity and split them by patient.

Inputs: a class-folder tree (`ROOT/<CLASS>/*` or `ROOT/<split>/<CLASS>/*`), a CSV manifest
(`path,label[,patient_id][,split]`), or the Kermany layout whose pneumonia subtypes come
from file names (`personN_bacteria_M.jpeg`, `personN_virus_M.jpeg`).
"""
from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cxrviewer.core.io import SUPPORTED_SUFFIXES
from cxrviewer.core.labels import NORMAL, kermany_patient_id, kermany_subtype
from cxrviewer.core.labels import folder_label as canonical_folder_label

SPLITS = ("train", "val", "test")
TASKS = ("pneumonia", "pneumonia3", "folders")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    patient_id: str
    source: str = ""        # data set / age group, for per-source metrics
    split: str = ""         # preassigned split from a manifest, else ""


def patient_id_from_name(path: Path) -> str:
    """Patient id from a Kermany file name; falls back to the file stem (one image, one patient)."""
    return kermany_patient_id(path.name) or path.stem


def kermany_label(path: Path, folder_label: str, task: str) -> str:
    """NORMAL/PNEUMONIA (task `pneumonia`) or NORMAL/BACTERIAL/VIRAL (task `pneumonia3`)."""
    folder = canonical_folder_label(folder_label) or folder_label.upper()
    if task == "pneumonia" or folder == NORMAL:
        return folder
    subtype = kermany_subtype(path.name)
    if subtype is None:
        raise ValueError(f"{path.name}: cannot tell bacterial from viral from the file name")
    return subtype


def dataset_name(path: Path) -> str:
    """The data set a folder or manifest belongs to: `chest_xray/train` → `chest_xray`."""
    path = Path(path)
    folder = path.parent if path.suffix.lower() == ".csv" else path
    return folder.parent.name if folder.name.lower() in SPLITS + ("validation",) else folder.name


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


def discover_folder_tree(root: Path, task: str = "folders", source: str = "") -> list[Sample]:
    """`ROOT/<CLASS>/*` or `ROOT/<split>/<CLASS>/*`; with a pneumonia task, Kermany subtypes."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    samples: list[Sample] = []
    children = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = [c for c in children if c.name.lower() in SPLITS or c.name.lower() == "validation"]
    layouts = [(c, c.name.lower().replace("validation", "val")) for c in split_dirs] or [(root, "")]
    for base, split in layouts:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for path in _image_files(class_dir):
                label = class_dir.name.upper() if task != "folders" else class_dir.name
                if task in ("pneumonia", "pneumonia3"):
                    label = kermany_label(path, class_dir.name, task)
                samples.append(Sample(path, label, patient_id_from_name(path), source or dataset_name(root), split))
    if not samples:
        raise ValueError(f"{root}: no images found in class folders")
    return samples


def read_manifest(csv_path: Path, source: str = "", source_column: bool = False) -> list[Sample]:
    """CSV with columns `path,label[,patient_id][,split]`; paths relative to the CSV's folder.

    The source is `source`, else (with `source_column`) the row's `source` value, else the CSV's folder name."""
    csv_path = Path(csv_path)
    samples = []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path.name}: a manifest needs at least the columns path,label")
        for row in reader:
            path = Path(row["path"])
            if not path.is_absolute():
                path = csv_path.parent / path
            patient = (row.get("patient_id") or "").strip() or path.stem
            row_source = (row.get("source") or "").strip() if source_column else ""
            samples.append(Sample(path, row["label"].strip(), patient, source or row_source or dataset_name(csv_path),
                                  (row.get("split") or "").strip().lower()))
    return samples


@dataclass(frozen=True)
class Problem:
    path: Path
    kind: str       # unreadable | duplicate | wrong-size
    detail: str


def integrity_check(
    samples: Sequence[Sample], expected_size: tuple[int, int] | None = None, decode: bool = True
) -> tuple[list[Sample], list[Problem]]:
    """Drop unreadable, duplicate (same bytes) and wrong-size images, reporting each one.

    `decode=False` checks bytes only (readable, not a duplicate), for callers that decode
    every image next anyway and report what fails there.
    """
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import load_image

    kept: list[Sample] = []
    problems: list[Problem] = []
    first_by_hash: dict[str, Path] = {}
    for sample in samples:
        try:
            digest = hashlib.sha256(sample.path.read_bytes()).hexdigest()
        except OSError as error:
            problems.append(Problem(sample.path, "unreadable", str(error)))
            continue
        if digest in first_by_hash:
            problems.append(Problem(sample.path, "duplicate", f"same bytes as {first_by_hash[digest].name}"))
            continue
        if not decode:
            first_by_hash[digest] = sample.path
            kept.append(sample)
            continue
        try:
            image = load_image(sample.path)
        except ImageLoadError as error:
            problems.append(Problem(sample.path, "unreadable", error.reason))
            continue
        if expected_size is not None and image.shape != expected_size:
            problems.append(Problem(sample.path, "wrong-size", f"{image.shape} instead of {expected_size}"))
            continue
        first_by_hash[digest] = sample.path
        kept.append(sample)
    return kept, problems


def problems_table(problems: Iterable[Problem]) -> str:
    rows = ["| file | problem | detail |", "| --- | --- | --- |"]
    rows += [f"| {p.path.name} | {p.kind} | {p.detail} |" for p in problems]
    return "\n".join(rows)


def split_by_patient(
    samples: Sequence[Sample],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> list[Sample]:
    """Assign train/val/test per patient, stratified by each patient's majority label.

    Samples whose `split` is already set (from a manifest or split folders) keep it.
    Every image of one patient lands in the same split, so validation never sees a
    patient the model trained on.
    """
    rng = np.random.default_rng(seed)
    fixed = [s for s in samples if s.split in SPLITS]
    free = [s for s in samples if s.split not in SPLITS]
    by_patient: dict[str, list[Sample]] = defaultdict(list)
    for sample in free:
        by_patient[sample.patient_id].append(sample)
    strata: dict[str, list[str]] = defaultdict(list)
    for patient, items in sorted(by_patient.items()):
        majority = Counter(f"{s.source}|{s.label}" for s in items).most_common(1)[0][0]
        strata[majority].append(patient)
    assignment: dict[str, str] = {}
    for _, patients in sorted(strata.items()):
        order = rng.permutation(len(patients))
        n_val = int(round(fractions[1] * len(patients)))
        n_test = int(round(fractions[2] * len(patients)))
        for rank, index in enumerate(order):
            split = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
            assignment[patients[index]] = split
    return fixed + [replace(s, split=assignment[s.patient_id]) for s in free]


def write_split(samples: Sequence[Sample], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient_id", "source", "split"])
        for s in samples:
            writer.writerow([str(s.path), s.label, s.patient_id, s.source, s.split])


def read_split(path: Path) -> list[Sample]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [Sample(Path(r["path"]), r["label"], r["patient_id"], r["source"], r["split"])
                for r in csv.DictReader(handle)]


def cell_balanced_weights(samples: Sequence[Sample], max_weight: float = 5.0) -> np.ndarray:
    """Per-sample weights giving every (source, label) cell the same total weight.

    With adult COVID-19 and adult normals next to pediatric normals and viral images, this
    makes "adult" carry no more COVID-19 than NORMAL and "child" no more NORMAL than
    VIRAL, so the age group alone cannot predict the label. Mean weight is 1.
    """
    cells = Counter((s.source, s.label) for s in samples)
    raw = np.array([1.0 / cells[(s.source, s.label)] for s in samples], dtype=np.float64)
    if not len(samples):
        return raw.astype(np.float32)
    weights = raw * len(samples) / raw.sum()
    # A cell of one or two images cannot be balanced: capped, so one image never weighs like fifty.
    for _ in range(10):
        capped = np.minimum(weights, max_weight)
        weights = capped * len(samples) / capped.sum()
    return np.minimum(weights, max_weight).astype(np.float32)


PEDIATRIC_SOURCES = frozenset({"chest_xray"})   # the Guangzhou set: children aged 1-5


def age_group(source: str) -> str:
    return "pediatric" if source in PEDIATRIC_SOURCES else "adult"


def group_balanced_weights(samples: Sequence[Sample], max_weight: float = 5.0) -> np.ndarray:
    """Equal total weight per (age group, label) cell, shared equally by the sources inside it.

    Balancing (source, label) cells still leaves "adult" carrying more COVID-19 than NORMAL when
    COVID-19 comes from more adult sources than normals do; balancing within each age group makes
    P(label | adult) flat, so being an adult says nothing about COVID-19. Capped like
    `cell_balanced_weights`; mean weight 1.
    """
    if not len(samples):
        return np.zeros(0, np.float32)
    cells = Counter((age_group(s.source), s.label) for s in samples)
    sources_in_cell: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in samples:
        sources_in_cell[(age_group(s.source), s.label)].add(s.source)
    per_source = Counter((s.source, s.label) for s in samples)
    raw = np.array([1.0 / len(cells) / len(sources_in_cell[(age_group(s.source), s.label)])
                    / per_source[(s.source, s.label)] for s in samples], dtype=np.float64)
    weights = raw * len(samples) / raw.sum()
    for _ in range(10):
        capped = np.minimum(weights, max_weight)
        weights = capped * len(samples) / capped.sum()
    return np.minimum(weights, max_weight).astype(np.float32)


def class_weights(labels: Sequence[int], n_classes: int) -> dict[int, float]:
    """Balanced weights n / (k · count_c), computed on the training split only."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes)
    total = counts.sum()
    return {c: float(total / (n_classes * counts[c])) if counts[c] else 0.0 for c in range(n_classes)}
