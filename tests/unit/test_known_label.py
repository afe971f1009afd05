"""Known labels from labelled folders: class folder names, Kermany subtypes, manifest.csv."""
from __future__ import annotations

from pathlib import Path

import pytest

from cxrviewer.teaching.known_label import KnownLabel, known_label, label_from_folder
from tests.shared_data import requires_shared, shared_dir


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/chest_xray/train/NORMAL/IM-0115-0001.jpeg", KnownLabel("NORMAL", "folder")),
        ("data/chest_xray/train/PNEUMONIA/person1000_bacteria_2931.jpeg",
         KnownLabel("BACTERIAL", "folder + Kermany file name")),
        ("data/chest_xray/train/PNEUMONIA/person1000_virus_1681.jpeg",
         KnownLabel("VIRAL", "folder + Kermany file name")),
        ("teaching/pneumonia/case7.png", KnownLabel("PNEUMONIA", "folder")),     # no subtype in the name
        ("x/COVID-19/88267e40.jpg", KnownLabel("COVID-19", "folder")),
        ("x/covid_19/a.png", KnownLabel("COVID-19", "folder")),
        ("x/Viral/a.png", KnownLabel("VIRAL", "folder")),
    ],
)
def test_class_folders_give_the_label(path: str, expected: KnownLabel) -> None:
    assert known_label(path) == expected


@pytest.mark.parametrize("path", [
    "/home/me/Doe_Jane/chest.dcm",          # a folder named after a patient is not a label
    "/studies/2024-03-15/image.png",
    "NORMAL.png",                           # the file name alone is not a labelled folder
    "",
])
def test_other_folders_have_no_label(path: str) -> None:
    assert known_label(path) is None
    assert known_label(None) is None


def test_copied_kermany_files_keep_their_label_from_the_file_name() -> None:
    assert known_label("/home/me/teaching set/person1022_virus_1711.jpeg") == KnownLabel("VIRAL", "Kermany file name")
    assert known_label("/tmp/person3_bacteria_10.jpeg") == KnownLabel("BACTERIAL", "Kermany file name")
    assert known_label("/tmp/person3_bacteria.jpeg") is None          # not the full Kermany pattern
    assert known_label("/tmp/my_person1_virus_2.jpeg") is None


def test_kermany_subtype_only_applies_inside_pneumonia_folders() -> None:
    assert label_from_folder(Path("NORMAL/person3_bacteria_1.jpeg")) == KnownLabel("NORMAL", "folder")


def test_manifest_in_the_parent_or_grandparent_folder(tmp_path: Path) -> None:
    images = tmp_path / "set" / "images"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(b"")
    (images / "b.png").write_bytes(b"")
    (tmp_path / "set" / "manifest.csv").write_text(
        "path,label,patient_id\nimages/a.png,COVID19,p1\nimages/c.png,NORMAL,p2\n", encoding="utf-8")
    assert known_label(images / "a.png") == KnownLabel("COVID-19", "manifest.csv")   # canonical spelling
    assert known_label(images / "b.png") is None                                       # not listed


def test_a_broken_manifest_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "a.png").write_bytes(b"")
    assert known_label(tmp_path / "a.png") is None


@requires_shared
def test_real_shared_folders() -> None:
    data = shared_dir() / "data"
    bacterial = next((data / "chest_xray/train/PNEUMONIA").glob("person*_bacteria_*.jpeg"))
    assert known_label(bacterial).label == "BACTERIAL"
    covid = next((data / "covid19/COVID-19").glob("*.jpg"))
    assert known_label(covid).label == "COVID-19"
    nih = next((data / "nih_adult_normal/NORMAL").glob("*.jpg"))
    assert known_label(nih).label == "NORMAL"
