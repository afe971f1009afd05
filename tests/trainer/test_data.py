"""Data discovery, integrity pass and patient-level split (no TensorFlow)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.data import (
    Sample,
    class_weights,
    dataset_name,
    discover_folder_tree,
    integrity_check,
    kermany_label,
    patient_id_from_name,
    read_manifest,
    read_split,
    split_by_patient,
    write_split,
)


def _write_png(path: Path, value: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size, size), value, np.uint8)
    image[0, 0] = (value * 7 + len(path.name)) % 256  # distinct bytes per file
    cv2.imwrite(str(path), image)


def _kermany_tree(root: Path) -> None:
    for i in range(6):
        _write_png(root / "NORMAL" / f"IM-{100 + i:04d}-0001.jpeg".replace(".jpeg", ".png"), 10 + i)
        _write_png(root / "PNEUMONIA" / f"person{i}_bacteria_{i}.png", 50 + i)
        _write_png(root / "PNEUMONIA" / f"person{i}_bacteria_{i + 100}.png", 60 + i)
        _write_png(root / "PNEUMONIA" / f"person{i + 50}_virus_{i}.png", 90 + i)


def test_patient_id_from_kermany_names() -> None:
    assert patient_id_from_name(Path("person12_bacteria_47.jpeg")) == "PERSON12"
    assert patient_id_from_name(Path("person12_virus_48.jpeg")) == "PERSON12"
    assert patient_id_from_name(Path("IM-0115-0001.jpeg")) == "IM-0115"
    assert patient_id_from_name(Path("NORMAL2-IM-1427-0001.jpeg")) == "NORMAL2-IM-1427"
    assert patient_id_from_name(Path("scan.png")) == "scan"


def test_kermany_subtypes_from_file_names() -> None:
    assert kermany_label(Path("person1_bacteria_1.jpeg"), "PNEUMONIA", "pneumonia3") == "BACTERIAL"
    assert kermany_label(Path("person1_virus_1.jpeg"), "PNEUMONIA", "pneumonia3") == "VIRAL"
    assert kermany_label(Path("person1_virus_1.jpeg"), "PNEUMONIA", "pneumonia") == "PNEUMONIA"
    assert kermany_label(Path("IM-1-1.jpeg"), "NORMAL", "pneumonia3") == "NORMAL"
    with pytest.raises(ValueError, match="bacterial from viral"):
        kermany_label(Path("odd.jpeg"), "PNEUMONIA", "pneumonia3")


def test_discover_tree_with_and_without_split_folders(tmp_path: Path) -> None:
    _kermany_tree(tmp_path / "chest_xray" / "train")
    samples = discover_folder_tree(tmp_path / "chest_xray" / "train", "pneumonia3")
    assert {s.label for s in samples} == {"NORMAL", "BACTERIAL", "VIRAL"}
    assert all(s.source == "chest_xray" and s.split == "" for s in samples)
    with_splits = discover_folder_tree(tmp_path / "chest_xray", "pneumonia")
    assert {s.split for s in with_splits} == {"train"}
    assert {s.label for s in with_splits} == {"NORMAL", "PNEUMONIA"}
    assert dataset_name(tmp_path / "chest_xray" / "train") == "chest_xray"


def test_manifest_paths_patients_and_splits(tmp_path: Path) -> None:
    _write_png(tmp_path / "COVID-19" / "a.png", 1)
    (tmp_path / "manifest.csv").write_text("path,label,patient_id,split\nCOVID-19/a.png,COVID-19,p1,test\n")
    (sample,) = read_manifest(tmp_path / "manifest.csv")
    assert sample.path == tmp_path / "COVID-19" / "a.png"
    assert (sample.label, sample.patient_id, sample.split) == ("COVID-19", "p1", "test")
    (tmp_path / "bad.csv").write_text("file,class\nx,y\n")
    with pytest.raises(ValueError, match="path,label"):
        read_manifest(tmp_path / "bad.csv")


def test_manifest_source_column_only_when_asked(tmp_path: Path) -> None:
    _write_png(tmp_path / "a.png", 1)
    _write_png(tmp_path / "b.png", 2)
    (tmp_path / "manifest.csv").write_text("path,label,source\na.png,NORMAL,actualmed\nb.png,NORMAL,\n")
    assert {s.source for s in read_manifest(tmp_path / "manifest.csv")} == {dataset_name(tmp_path / "manifest.csv")}
    by_row = read_manifest(tmp_path / "manifest.csv", source_column=True)
    assert [s.source for s in by_row] == ["actualmed", dataset_name(tmp_path / "manifest.csv")]
    assert {s.source for s in read_manifest(tmp_path / "manifest.csv", "given", source_column=True)} == {"given"}


def test_integrity_pass_reports_and_excludes(tmp_path: Path) -> None:
    _write_png(tmp_path / "good.png", 5)
    (tmp_path / "copy.png").write_bytes((tmp_path / "good.png").read_bytes())
    (tmp_path / "truncated.png").write_bytes((tmp_path / "good.png").read_bytes()[:30])
    _write_png(tmp_path / "small.png", 9, size=8)
    samples = [Sample(tmp_path / n, "NORMAL", n) for n in ("good.png", "copy.png", "truncated.png", "small.png")]
    kept, problems = integrity_check(samples, expected_size=(16, 16))
    assert [s.path.name for s in kept] == ["good.png"]
    kinds = {p.path.name: p.kind for p in problems}
    assert kinds == {"copy.png": "duplicate", "truncated.png": "unreadable", "small.png": "wrong-size"}
    bytes_only, problems = integrity_check(samples, decode=False)     # duplicates only; nothing decoded
    assert [s.path.name for s in bytes_only] == ["good.png", "truncated.png", "small.png"]
    assert [(p.path.name, p.kind) for p in problems] == [("copy.png", "duplicate")]


def test_split_keeps_patients_together_and_is_stratified_and_seeded(tmp_path: Path) -> None:
    samples = []
    for patient in range(200):
        label = ["NORMAL", "BACTERIAL", "VIRAL"][patient % 3]
        for image in range(1 + patient % 3):
            samples.append(Sample(Path(f"p{patient}_{image}.png"), label, f"P{patient}"))
    split = split_by_patient(samples, (0.8, 0.1, 0.1), seed=3)
    splits_of_patient = defaultdict(set)
    for s in split:
        splits_of_patient[s.patient_id].add(s.split)
    assert all(len(v) == 1 for v in splits_of_patient.values())
    for label in ("NORMAL", "BACTERIAL", "VIRAL"):
        patients = {s.patient_id: s.split for s in split if s.label == label}
        val_share = sum(v == "val" for v in patients.values()) / len(patients)
        assert 0.05 < val_share < 0.15
    assert split == split_by_patient(samples, (0.8, 0.1, 0.1), seed=3)
    assert split != split_by_patient(samples, (0.8, 0.1, 0.1), seed=4)


def test_split_round_trips_and_preassigned_splits_are_kept(tmp_path: Path) -> None:
    samples = [Sample(Path("a.png"), "X", "p1", "src", "test"), Sample(Path("b.png"), "X", "p2")]
    split = split_by_patient(samples)
    assert split[0].split == "test"
    write_split(split, tmp_path / "split.csv")
    assert read_split(tmp_path / "split.csv") == split


def test_class_weights_are_balanced() -> None:
    weights = class_weights([0, 0, 0, 1], 2)
    assert weights[0] == pytest.approx(4 / 6)
    assert weights[1] == pytest.approx(2.0)


def test_cell_balanced_weights_equalise_source_label_cells() -> None:
    from trainer.data import cell_balanced_weights

    samples = ([Sample(Path(f"c{i}"), "COVID-19", f"c{i}", "covid19") for i in range(30)]
               + [Sample(Path(f"a{i}"), "NORMAL", f"a{i}", "nih") for i in range(10)]
               + [Sample(Path(f"k{i}"), "NORMAL", f"k{i}", "kermany") for i in range(60)])
    weights = cell_balanced_weights(samples)
    totals = defaultdict(float)
    for s, w in zip(samples, weights):
        totals[(s.source, s.label)] += float(w)
    assert len(set(round(v, 4) for v in totals.values())) == 1
    assert weights.mean() == pytest.approx(1.0)


def test_split_from_an_earlier_run_is_inherited(tmp_path: Path) -> None:
    """Images an earlier run held out stay held out when a new task starts from its backbone."""
    from trainer.config import TrainConfig
    from trainer.train import collect_samples

    _kermany_tree(tmp_path / "chest_xray" / "train")
    earlier = split_by_patient(discover_folder_tree(tmp_path / "chest_xray" / "train", "pneumonia3"), seed=1)
    write_split(earlier, tmp_path / "earlier.csv")
    config = TrainConfig(name="covid3", task="folders", data=(str(tmp_path / "chest_xray" / "train"),),
                         run_dir=str(tmp_path / "run"), labels=("COVID-19", "NORMAL", "VIRAL"),
                         split_from=str(tmp_path / "earlier.csv"))
    samples = collect_samples(config)
    assert {s.label for s in samples} == {"NORMAL", "VIRAL"}
    expected = {s.path: s.split for s in earlier}
    assert all(s.split == expected[s.path] for s in samples)
