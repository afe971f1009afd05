"""Trainee reads: validation, the reveal comparison, the SQLite store, agreement and calibration."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.teaching.reads import (
    DATA_DIR_ENV,
    SCHEMA_VERSION,
    ReadCall,
    ReadRecord,
    ReadStore,
    ReadStoreError,
    brier_score,
    calibration_curve,
    call_agrees,
    compare_read,
    default_store_path,
    heat_at_point,
    summarise,
)

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def record(n: int = 0, call: str = "viral", confidence: int = 70, probabilities=(0.1, 0.2, 0.7),
           known: str | None = None, **kwargs) -> ReadRecord:
    return ReadRecord(image_sha256=sha(n), call=call, confidence=confidence, model_name="tiny",
                      labels=LABELS, probabilities=probabilities, known_label=known, **kwargs)


# ------------------------------------------------------------------------ calls and agreement

def test_read_call_validates() -> None:
    assert ReadCall("normal", 0).point is None
    assert ReadCall("other", 100, (3, 4)).point == (3.0, 4.0)
    assert ReadCall("covid-19", 50).title == "COVID-19"        # calls come from the model's classes
    with pytest.raises(ValueError, match="unknown call"):
        ReadCall("Pneumonia!", 50)
    with pytest.raises(ValueError, match="unknown call"):
        ReadCall("", 50)
    with pytest.raises(ValueError, match="0–100"):
        ReadCall("normal", 101)
    with pytest.raises(ValueError, match="finite"):
        ReadCall("normal", 10, (float("nan"), 1.0))


@pytest.mark.parametrize(("call", "label", "expected"), [
    ("normal", "NORMAL", True), ("viral", "VIRAL", True), ("viral", "COVID-19", True),
    ("bacterial", "PNEUMONIA", True), ("viral", "PNEUMONIA", True), ("normal", "PNEUMONIA", False),
    ("bacterial", "VIRAL", False), ("other", "EFFUSION", True), ("normal", "EFFUSION", False),
    ("normal", None, None), ("normal", "", None),
])
def test_call_agreement_mapping(call: str, label: str | None, expected: bool | None) -> None:
    assert call_agrees(call, label) is expected


# ------------------------------------------------------------------------ reveal comparison

def test_heat_at_point_follows_the_upsampled_map() -> None:
    cam = np.zeros((4, 4), np.float32)
    cam[0, 3] = 5.0                                   # hot top-right cell
    shape = (400, 200)                                # rows, columns
    assert heat_at_point(cam, shape, (190, 10)) == pytest.approx(1.0, abs=0.05)
    assert heat_at_point(cam, shape, (10, 390)) == pytest.approx(0.0, abs=0.05)
    assert heat_at_point(cam, shape, (200, 10)) is None          # x == width is off the image
    assert heat_at_point(cam, shape, (-1, 10)) is None


def test_heat_at_point_on_a_large_image_uses_the_capped_grid() -> None:
    cam = np.arange(36, dtype=np.float32).reshape(6, 6)
    small = heat_at_point(cam, (3000, 3000), (2999, 2999))
    assert small == pytest.approx(1.0, abs=0.02)


def test_compare_read_reports_agreement_point_and_label() -> None:
    cam = np.zeros((4, 4), np.float32)
    cam[2:, :2] = 1.0                                  # hot bottom-left quarter
    call = ReadCall("viral", 80, (20.0, 90.0))
    result = compare_read(call, "tiny", LABELS, (0.1, 0.2, 0.7), cam, (100, 100), 0.5, known_label="BACTERIAL")
    assert result.model_top_label == "VIRAL"
    assert result.model_top_probability == pytest.approx(0.7)
    assert result.agrees_with_model is True
    assert result.point_in_hot_region is True
    assert result.agrees_with_known_label is False
    elsewhere = compare_read(ReadCall("normal", 10, (90.0, 10.0)), "tiny", LABELS, (0.1, 0.2, 0.7), cam,
                             (100, 100), 0.5)
    assert elsewhere.point_in_hot_region is False
    assert elsewhere.agrees_with_model is False
    assert elsewhere.known_label is None and elsewhere.agrees_with_known_label is None


def test_compare_read_without_a_map_or_point() -> None:
    result = compare_read(ReadCall("normal", 50), "tiny", LABELS, (0.8, 0.1, 0.1))
    assert result.point_heat is None and result.point_in_hot_region is None
    with pytest.raises(ValueError, match="labels"):
        compare_read(ReadCall("normal", 50), "tiny", LABELS, (0.5, 0.5))


# ------------------------------------------------------------------------ records

def test_record_refuses_anything_but_a_content_hash() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        ReadRecord(image_sha256="/home/doe/jane.dcm", call="normal", confidence=5)
    assert ReadRecord(image_sha256=sha(1).upper(), call="normal", confidence=5).image_sha256 == sha(1)


def test_record_from_comparison_keeps_everything() -> None:
    cam = np.array([[0.0, 0.0], [0.0, 2.0]], np.float32)      # hot bottom-right, the point is top-left
    comparison = compare_read(ReadCall("bacterial", 65, (1, 1)), "tiny", LABELS, (0.2, 0.5, 0.3), cam, (10, 10),
                              0.5, known_label="BACTERIAL")
    rec = ReadRecord.from_comparison(comparison, sha(2), frame_index=1)
    assert (rec.call, rec.confidence, rec.point, rec.frame_index) == ("bacterial", 65, (1.0, 1.0), 1)
    assert rec.model_top_label == "BACTERIAL" and rec.agrees_with_model is True
    assert rec.point_in_hot_region is False and rec.point_heat == pytest.approx(comparison.point_heat)
    assert rec.created.endswith("+00:00")


# ------------------------------------------------------------------------ store

def test_store_round_trip_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "reads.sqlite3"
    with ReadStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        first = store.add(record(1, point=(12.5, 40.0), point_heat=0.8, point_in_hot_region=True, known="VIRAL"))
        store.add(record(2, call="normal", probabilities=(0.6, 0.3, 0.1)))
        assert first.id is not None
    with ReadStore(path) as store:                  # reopened: data and schema survive
        rows = store.records()
        assert [r.image_sha256 for r in rows] == [sha(1), sha(2)]
        assert rows[0].point == (12.5, 40.0)
        assert rows[0].point_in_hot_region is True and rows[0].point_heat == pytest.approx(0.8)
        assert rows[0].labels == LABELS and rows[0].probabilities == pytest.approx((0.1, 0.2, 0.7))
        assert rows[1].point is None and rows[1].known_label is None
        assert [r.id for r in store.records_for_image(sha(2))] == [rows[1].id]
        store.delete(rows[0].id)
        assert len(store.records()) == 1
        assert store.records(model_name="other") == []
        store.clear()
        assert store.records() == []


def test_store_holds_no_patient_data(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    with ReadStore(path) as store:
        store.add(record(3, known="NORMAL"))
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(reads)")]
    assert not any(word in " ".join(columns) for word in ("path", "name_", "patient", "file"))
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert sha(3) in dump and "synthetic" not in dump


def test_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(ReadStoreError, match="newer cxrviewer"):
        ReadStore(path)


def test_store_reports_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ReadStoreError, match="reads.sqlite3"):
        ReadStore(path)


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "reads.sqlite3"
    with ReadStore() as store:
        assert store.path.parent == tmp_path / "data"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert default_store_path().name == "reads.sqlite3"
    assert "cxrviewer" in str(default_store_path())


# ------------------------------------------------------------------------ summary and calibration

def test_summary_counts_agreement_with_model_and_label() -> None:
    records = [
        record(1, "viral", known="VIRAL"),                                  # agrees with both
        record(2, "normal", known="NORMAL"),                                # label only (model says viral)
        record(3, "bacterial", known="VIRAL"),                              # neither
        record(4, "viral"),                                                 # model only, no label
        ReadRecord(image_sha256=sha(5), call="normal", confidence=5),       # no model, no label
    ]
    summary = summarise(records)
    assert summary.n_reads == 5
    assert (summary.n_agree_model, summary.n_with_model) == (2, 4)
    assert (summary.n_agree_label, summary.n_with_label) == (2, 3)
    assert (summary.n_model_agree_label, summary.n_model_with_label) == (2, 3)   # model: viral on all three
    assert summary.model_agreement == pytest.approx(0.5)
    assert summarise([]).model_agreement is None


def test_calibration_uses_only_labelled_reads() -> None:
    records = [
        record(1, "viral", 90, known="VIRAL"), record(2, "viral", 95, known="VIRAL"),
        record(3, "normal", 85, known="VIRAL"), record(4, "normal", 100, known="NORMAL"),
        record(5, "viral", 10, known="NORMAL"), record(6, "normal", 30, known="NORMAL"),
        record(7, "viral", 50),                                             # no label: not counted
    ]
    bins = calibration_curve(records, bins=5)
    assert [(b.low, b.high, b.count) for b in bins] == [(0, 20, 1), (20, 40, 1), (80, 100, 4)]
    top = bins[-1]
    assert top.accuracy == pytest.approx(0.75)                               # 3 of 4 right
    assert top.mean_confidence == pytest.approx((0.9 + 0.95 + 0.85 + 1.0) / 4)
    assert bins[0].accuracy == 0.0 and bins[1].accuracy == 1.0
    expected = np.mean([(0.9 - 1) ** 2, (0.95 - 1) ** 2, 0.85 ** 2, 0.0, 0.1 ** 2, (0.3 - 1) ** 2])
    assert brier_score(records) == pytest.approx(expected)
    assert calibration_curve([record(8)]) == () and brier_score([record(8)]) is None
    with pytest.raises(ValueError):
        calibration_curve(records, bins=0)


def test_records_serialise_probabilities_as_json(tmp_path: Path) -> None:
    with ReadStore(tmp_path / "r.sqlite3") as store:
        store.add(record(9))
    raw = sqlite3.connect(tmp_path / "r.sqlite3").execute("SELECT model_probabilities FROM reads").fetchone()[0]
    assert json.loads(raw) == pytest.approx([0.1, 0.2, 0.7])


# ------------------------------------------------------------------------ the model's call, re-reads, hot region

BORDERLINE = (0.165, 0.37, 0.465)        # pneumonia 0.835, VIRAL on top; the card's threshold 0.85


def test_agreement_is_scored_on_the_models_call_not_the_top_class() -> None:
    viral = compare_read(ReadCall("viral", 70), "pneumonia3", LABELS, BORDERLINE, operating_threshold=0.85)
    assert viral.model_top_label == "VIRAL" and viral.model_call_label == "NORMAL"
    assert viral.agrees_with_model is False
    normal = compare_read(ReadCall("normal", 70), "pneumonia3", LABELS, BORDERLINE, operating_threshold=0.85)
    assert normal.agrees_with_model is True
    rec = ReadRecord.from_comparison(normal, sha(5))
    assert rec.operating_threshold == 0.85 and rec.model_call_label == "NORMAL" and rec.agrees_with_model is True
    assert ReadRecord.from_comparison(normal, sha(5), ).model_agrees_with_known_label is None
    assert replace_known(rec, "VIRAL").model_agrees_with_known_label is False


def replace_known(rec: ReadRecord, label: str) -> ReadRecord:
    from dataclasses import replace

    return replace(rec, known_label=label)


def test_read_choices_follow_the_models_labels() -> None:
    from cxrviewer.teaching.reads import calls_for_labels

    assert calls_for_labels(("COVID-19", "NORMAL", "VIRAL")) == ("covid-19", "normal", "viral", "other")
    assert calls_for_labels(LABELS) == ("normal", "bacterial", "viral", "other")
    covid = compare_read(ReadCall("covid-19", 60), "covid3", ("COVID-19", "NORMAL", "VIRAL"), (0.3, 0.6, 0.1),
                         operating_threshold=0.19)
    assert covid.model_call_label == "COVID-19" and covid.agrees_with_model is True
    viral = compare_read(ReadCall("viral", 60), "covid3", ("COVID-19", "NORMAL", "VIRAL"), (0.3, 0.6, 0.1),
                         operating_threshold=0.19)
    assert viral.agrees_with_model is False     # covid3 offers COVID-19 itself: "viral" is another class
    assert call_agrees("covid-19", "COVID-19") is True and call_agrees("viral", "COVID-19") is True


def test_reading_an_image_again_replaces_its_read_and_keeps_history(tmp_path: Path) -> None:
    with ReadStore(tmp_path / "reads.sqlite3") as store:
        first = store.add(record(1, call="viral"))
        store.add(record(2, call="normal"))
        second = store.add(record(1, call="bacterial"))
        current = store.records()
        assert [(r.image_sha256, r.call) for r in current] == [(sha(2), "normal"), (sha(1), "bacterial")]
        history = store.records_for_image(sha(1))
        assert [r.call for r in history] == ["viral", "bacterial"]
        assert history[0].id == first.id and history[0].superseded_by == second.id
        assert history[1].superseded_by is None
        assert len(store.records(history=True)) == 3
        assert summarise(store.records()).n_reads == 2
        other_frame = store.add(record(1, call="normal", frame_index=1))   # another frame is another image
        assert other_frame.id in [r.id for r in store.records()] and second.id in [r.id for r in store.records()]


def test_a_schema_1_store_is_migrated_with_its_reads(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE reads (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL,
            image_sha256 TEXT NOT NULL, frame_index INTEGER NOT NULL DEFAULT 0,
            call TEXT NOT NULL CHECK (call IN ('normal', 'bacterial', 'viral', 'other')),
            confidence INTEGER NOT NULL, point_x REAL, point_y REAL, model_name TEXT NOT NULL DEFAULT '',
            model_labels TEXT NOT NULL DEFAULT '[]', model_probabilities TEXT NOT NULL DEFAULT '[]',
            point_heat REAL, point_in_hot_region INTEGER, known_label TEXT);
        PRAGMA user_version = 1;""")
    db.execute("INSERT INTO reads (created, image_sha256, call, confidence, model_labels, model_probabilities) "
               "VALUES ('2024-01-01T00:00:00+00:00', ?, 'viral', 50, ?, ?)",
               (sha(7), json.dumps(list(LABELS)), json.dumps(list(BORDERLINE))))
    db.commit()
    db.close()
    with ReadStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        (old,) = store.records()
        assert old.call == "viral" and old.operating_threshold is None
        assert old.model_call_label == "VIRAL"          # no threshold was stored: the top class, as then
        store.add(record(8, call="covid-19"))             # the new schema takes any model class


def test_a_flagged_read_round_trips_and_stays_out_of_agreement_with_the_model(tmp_path: Path) -> None:
    comparison = compare_read(ReadCall("normal", 60), "tiny", LABELS, (0.1, 0.2, 0.7), known_label="NORMAL",
                              outside_training_data=True)
    flagged = ReadRecord.from_comparison(comparison, sha(1))
    assert flagged.outside_training_data and flagged.agrees_with_model is False
    with ReadStore(tmp_path / "reads.sqlite3") as store:
        store.add(flagged)
        store.add(record(2, call="viral", known="VIRAL"))                 # agrees with the model, not flagged
        store.add(record(3, call="normal", known="VIRAL"))                # disagrees, not flagged
        reads = store.records()
    assert [r.outside_training_data for r in reads] == [True, False, False]
    summary = summarise(reads)
    assert (summary.n_with_model, summary.n_agree_model, summary.n_flagged) == (2, 1, 1)
    assert summary.model_agreement == 0.5                                 # 1 of 2: the flagged read left out
    assert (summary.n_with_label, summary.n_agree_label) == (3, 2)        # the trainee's accuracy counts it
    assert brier_score(reads) is not None and sum(b.count for b in calibration_curve(reads)) == 3
    assert summarise([record(4)]).n_flagged == 0


def test_a_schema_2_store_is_migrated_with_its_reads_unflagged(tmp_path: Path) -> None:
    path = tmp_path / "reads.sqlite3"
    with ReadStore(path) as store:
        store.add(record(1, call="viral", known="VIRAL"))
    db = sqlite3.connect(path)                     # make it the schema-2 file an older cxrviewer wrote
    db.executescript("ALTER TABLE reads DROP COLUMN outside_training_data; PRAGMA user_version = 2;")
    db.close()
    with ReadStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 3
        (old,) = store.records()
        assert old.call == "viral" and old.known_label == "VIRAL" and not old.outside_training_data
        store.add(record(2, outside_training_data=True))
        assert [r.outside_training_data for r in store.records()] == [False, True]


def test_hot_region_is_the_smallest_part_holding_half_the_heat() -> None:
    from cxrviewer.teaching.reads import HOT_MASS_SHARE, hot_level

    cam = np.zeros((8, 8), np.float32)
    cam[1:3, 1:3] = 4.0                                 # one clear focus
    cam += 0.2                                          # a little heat everywhere
    level, area = hot_level(cam, (200, 200))
    assert 0 < area < 0.2                               # a focal map gives a small region
    flat = np.ones((8, 8), np.float32)                  # no focus (absolute scale): half the image
    assert hot_level(flat, (200, 200), "absolute", 2.0)[1] == pytest.approx(HOT_MASS_SHARE, abs=0.02)
    assert hot_level(np.zeros((4, 4), np.float32), (50, 50)) == (float("inf"), 0.0)
    inside = compare_read(ReadCall("viral", 50, (40.0, 40.0)), "tiny", LABELS, (0.1, 0.2, 0.7), cam, (200, 200),
                          hot_threshold=None)
    outside = compare_read(ReadCall("viral", 50, (150.0, 150.0)), "tiny", LABELS, (0.1, 0.2, 0.7), cam,
                           (200, 200), hot_threshold=None)
    assert inside.point_in_hot_region is True and outside.point_in_hot_region is False
    assert inside.hot_threshold == pytest.approx(level) and inside.hot_area == pytest.approx(area)
