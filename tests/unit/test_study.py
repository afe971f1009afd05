"""Grouping opened files into Patient → Study → Series from DICOM headers."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer.core.io import dicom as dicom_io
from cxrviewer.core.io import load_image
from cxrviewer.core.study import Instance, StudyTree, group_images
from tests.shared_data import requires_shared, shared_dir

PIXELS = np.zeros((8, 8), np.uint16)


def _dicom(make_dicom, name: str, patient: str, study: str, series: str, number: int, **tags: object) -> Path:
    return make_dicom(
        PIXELS,
        name=name,
        PatientID=patient,
        PatientName=f"{patient}^Test",
        StudyInstanceUID=study,
        SeriesInstanceUID=series,
        InstanceNumber=number,
        **tags,
    )


@pytest.fixture
def study_files(make_dicom, tmp_path):
    files = [
        _dicom(make_dicom, "b1.dcm", "P2", "1.2.3.2", "1.2.3.2.1", 1, StudyDate="20230101"),
        _dicom(make_dicom, "a3.dcm", "P1", "1.2.3.1", "1.2.3.1.1", 3, StudyDate="20240101",
               SeriesNumber=1, SeriesDescription="PA"),
        _dicom(make_dicom, "a1.dcm", "P1", "1.2.3.1", "1.2.3.1.1", 10, StudyDate="20240101",
               SeriesNumber=1, SeriesDescription="PA"),
        _dicom(make_dicom, "a2.dcm", "P1", "1.2.3.1", "1.2.3.1.2", 1, StudyDate="20240101",
               SeriesNumber=2, SeriesDescription="LAT"),
        _dicom(make_dicom, "old.dcm", "P1", "1.2.3.0", "1.2.3.0.1", 1, StudyDate="20200101"),
    ]
    png = tmp_path / "photo.png"
    ok, encoded = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    png.write_bytes(encoded.tobytes())
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not dicom at all")
    return files + [png, broken]


def test_groups_patients_studies_series_in_order(study_files):
    tree = group_images(study_files)
    assert isinstance(tree, StudyTree)
    assert [p.patient_id for p in tree.patients] == ["P1", "P2"]
    p1 = tree.patients[0]
    assert p1.name == "P1, Test" and p1.label == "P1, Test (P1)"
    assert [s.uid for s in p1.studies] == ["1.2.3.0", "1.2.3.1"]  # by date
    recent = p1.studies[1]
    assert recent.date == "2024-01-01"
    assert [s.number for s in recent.series] == [1, 2]
    assert recent.series[0].label == "Series 1 PA (DX)"
    # sorted by InstanceNumber, not by file name
    assert [i.path.name for i in recent.series[0].instances] == ["a3.dcm", "a1.dcm"]
    assert [i.instance_number for i in recent.series[0].instances] == [3, 10]


def test_non_dicom_and_unreadable_files_go_to_files_group(study_files):
    tree = group_images(study_files)
    assert [i.path.name for i in tree.files] == ["broken.dcm", "photo.png"]
    assert all(isinstance(i, Instance) for i in tree.files)
    assert len(tree.paths()) == len(study_files)
    assert tree.paths()[-2:] == [i.path for i in tree.files]


def test_headers_only_no_pixel_decoding(study_files, monkeypatch):
    def must_not_decode(*args, **kwargs):
        raise AssertionError("grouping decoded pixels")

    monkeypatch.setattr(dicom_io.read, "decode_frame", must_not_decode)
    monkeypatch.setattr(dicom_io.read, "load_dicom", must_not_decode)
    assert len(group_images(study_files).patients) == 2


def test_loaded_images_and_duplicates(make_dicom, study_files):
    image = load_image(study_files[0])
    tree = group_images([image, study_files[0], str(study_files[1])])
    assert [p.patient_id for p in tree.patients] == ["P1", "P2"]
    assert sum(len(s.instances) for p in tree.patients for st in p.studies for s in st.series) == 2


def test_multi_frame_count_and_missing_uids(make_dicom):
    path = make_dicom(np.zeros((3, 4, 4), np.uint16), name="mf.dcm",
                      customize=lambda ds: (delattr(ds, "StudyInstanceUID"), delattr(ds, "SeriesInstanceUID")))
    tree = group_images([path])
    series = tree.patients[0].studies[0].series[0]
    assert series.instances[0].frame_count == 3
    assert tree.patients[0].studies[0].uid == "" and series.uid == ""


def test_empty_input():
    assert group_images([]) == StudyTree(patients=(), files=())


@pytest.mark.shared
@requires_shared
def test_real_dicom_folder_groups():
    folder = shared_dir()
    assert folder is not None
    files = sorted((folder / "dicom").glob("*.dcm"))
    tree = group_images(files)
    assert not tree.files
    assert sorted(tree.paths()) == files
