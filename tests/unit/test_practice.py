"""Practice packets without Qt: the pool, seeded balanced selection, the clock, JSON, scoring, exports."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrviewer.teaching.practice import (
    REVEAL_END,
    Case,
    CaseResult,
    LabelledImage,
    PacketClock,
    PacketSpec,
    PacketState,
    PracticeError,
    clear_state,
    format_seconds,
    labelled_images,
    load_state,
    new_packet,
    pool_counts,
    save_state,
    score_csv,
    score_packet,
    select_cases,
    stage_cases,
    state_path,
    write_score_csv,
    write_score_pdf,
)


def _png(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16), value, np.uint8)).save(path)
    return path


@pytest.fixture
def kermany(tmp_path: Path) -> Path:
    """4 NORMAL, 3 bacterial and 3 viral Kermany files, plus one unlabelled image."""
    root = tmp_path / "chest_xray"
    for i in range(4):
        _png(root / "NORMAL" / f"IM-{i:04d}.png")
    for i in range(3):
        _png(root / "PNEUMONIA" / f"person{i}_bacteria_{i}.png")
        _png(root / "PNEUMONIA" / f"person{10 + i}_virus_{i}.png")
    _png(root / "misc" / "unlabelled.png")
    return root


def _pool(n_normal: int, n_abnormal: int) -> list[LabelledImage]:
    return ([LabelledImage(f"/x/NORMAL/n{i:03d}.png", "NORMAL") for i in range(n_normal)]
            + [LabelledImage(f"/x/PNEUMONIA/a{i:03d}.png", "BACTERIAL" if i % 2 else "VIRAL")
               for i in range(n_abnormal)])


# ----------------------------------------------------------------------------- the pool
def test_the_pool_of_a_class_folder_has_kermany_subtypes_and_skips_unlabelled_images(kermany: Path) -> None:
    pool = labelled_images(kermany)
    labels = sorted(item.label for item in pool)
    assert labels == ["BACTERIAL"] * 3 + ["NORMAL"] * 4 + ["VIRAL"] * 3
    assert pool_counts(pool) == (4, 6)
    assert not any("unlabelled" in item.path for item in pool)


def test_the_pool_of_a_manifest_csv_resolves_relative_paths_and_skips_missing_files(tmp_path: Path) -> None:
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    manifest = tmp_path / "my_set.csv"
    manifest.write_text("path,label,site\nimg/a.png,normal,x\nimg/b.png,Covid 19,y\nimg/gone.png,NORMAL,z\n")
    pool = labelled_images(manifest)
    assert [(Path(p.path).name, p.label) for p in pool] == [("a.png", "NORMAL"), ("b.png", "COVID-19")]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.png,NORMAL\n")
    with pytest.raises(PracticeError, match="path and label"):
        labelled_images(bad)


# ----------------------------------------------------------------------------- selection
def test_selection_is_deterministic_given_the_seed_and_independent_of_listing_order() -> None:
    pool = _pool(40, 40)
    first = select_cases(pool, 30, True, seed=7)
    again = select_cases(list(reversed(pool)), 30, True, seed=7)
    other = select_cases(pool, 30, True, seed=8)
    assert first == again
    assert [c.path for c in first.cases] != [c.path for c in other.cases]
    assert [c.number for c in first.cases] == list(range(1, 31))
    assert len({c.path for c in first.cases}) == 30


def test_a_balanced_packet_is_half_normal_and_the_order_is_shuffled() -> None:
    pool = _pool(50, 200)
    selection = select_cases(pool, 30, True, seed=1)
    abnormal = [c.abnormal for c in selection.cases]
    assert abnormal.count(False) == 15 and abnormal.count(True) == 15 and not selection.note
    assert abnormal != sorted(abnormal)          # normal cases are not all first
    odd = select_cases(pool, 5, True, seed=1)
    assert [c.abnormal for c in odd.cases].count(True) == 3


def test_a_short_side_is_filled_from_the_other_and_the_note_says_so() -> None:
    selection = select_cases(_pool(3, 40), 10, True, seed=2)
    assert len(selection.cases) == 10
    assert sum(not c.abnormal for c in selection.cases) == 3
    assert "only 3 normal" in selection.note
    small = select_cases(_pool(2, 2), 30, True, seed=2)
    assert len(small.cases) == 4 and "only 4 labelled images" in small.note


def test_an_unbalanced_packet_follows_the_pool() -> None:
    selection = select_cases(_pool(10, 90), 40, False, seed=3)
    assert len(selection.cases) == 40
    assert sum(not c.abnormal for c in selection.cases) < 15


def test_an_empty_pool_is_refused_in_words() -> None:
    with pytest.raises(PracticeError, match="no labelled images"):
        new_packet(PacketSpec("/nowhere", 5, seed=1), [])


def test_the_spec_checks_its_values() -> None:
    with pytest.raises(ValueError):
        PacketSpec("/x", n_cases=0)
    with pytest.raises(ValueError):
        PacketSpec("/x", time_limit_s=0)
    with pytest.raises(ValueError):
        PacketSpec("/x", reveal="sometimes")


# ----------------------------------------------------------------------------- the clock
def test_the_clock_counts_only_running_time() -> None:
    clock = PacketClock()
    assert clock.elapsed(100.0) == 0.0 and not clock.running
    clock = clock.start(100.0)
    assert clock.elapsed(130.0) == 30.0
    clock = clock.pause(130.0)
    assert clock.elapsed(500.0) == 30.0           # paused: nothing counts
    assert clock.pause(600.0) == clock             # pausing twice changes nothing
    clock = clock.start(1000.0)
    assert clock.start(1005.0) == clock            # starting twice neither
    assert clock.elapsed(1010.0) == 40.0


def test_remaining_time_progress_text_and_time_out() -> None:
    packet = new_packet(PacketSpec("/x", 30, time_limit_s=35 * 60, seed=1), _pool(20, 20)).started(0.0)
    assert packet.remaining(0.0) == 35 * 60
    assert packet.progress_text(0.0) == "Packet 1/30 · 35:00 left"
    packet = packet.paused(35 * 60 - 751)
    assert packet.progress_text(10_000.0) == "Packet 1/30 · 12:31 left · paused"
    assert not packet.timed_out(10_000.0)
    packet = packet.started(20_000.0)
    assert packet.timed_out(20_000.0 + 751) and packet.remaining(99_999.0) == 0.0
    untimed = new_packet(PacketSpec("/x", 3, time_limit_s=None, seed=1), _pool(2, 2)).started(0.0)
    assert untimed.remaining(5.0) is None and not untimed.timed_out(1e9)
    assert untimed.progress_text(65.0) == "Packet 1/3 · 1:05 (untimed)"
    assert format_seconds(3723) == "1:02:03" and format_seconds(0.2) == "0:01" and format_seconds(0) == "0:00"


def test_calls_record_time_per_case_without_pauses_and_the_packet_finishes_after_the_last() -> None:
    packet = new_packet(PacketSpec("/x", 3, seed=4), _pool(2, 2)).started(0.0)
    packet = packet.with_call("normal", 80, now=12.0)
    assert packet.with_call("viral", 10, now=13.0) == packet      # one call per case
    packet = packet.advanced(15.0).paused(20.0).started(100.0)     # a 80 s pause in case 2
    packet = packet.with_call("viral", 60, now=110.0, model_label="VIRAL", model_name="m")
    packet = packet.advanced(110.0).with_call("other", 40, now=111.5)
    assert [r.seconds for r in packet.results] == [12.0, 15.0, 1.5]
    assert packet.results[1].model_label == "VIRAL"
    packet = packet.with_model_label(1, "NORMAL", "m")
    assert packet.results[0].model_label == "NORMAL" and packet.results[0].model_name == "m"
    done = packet.advanced(112.0)
    assert done.finished and done.finish_reason == "complete" and not done.clock.running
    assert done.with_call("normal", 50, now=113.0) == done


# ----------------------------------------------------------------------------- persistence
def test_the_state_round_trips_through_json_paused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    spec = PacketSpec("/x", 4, balanced=False, time_limit_s=None, reveal=REVEAL_END, seed=99)
    packet = new_packet(spec, _pool(5, 5)).started(1000.0).with_call("normal", 70, 1010.0).advanced(1011.0)
    path = state_path()
    assert path == tmp_path / "data" / "practice_packet.json"
    save_state(packet, path, now=1020.0)
    restored = load_state(path)
    assert restored is not None
    assert restored.spec == spec and restored.cases == packet.cases and restored.results == packet.results
    assert restored.current == 1 and restored.case_started_s == pytest.approx(11.0)
    assert not restored.clock.running and restored.elapsed(5e9) == pytest.approx(20.0)
    assert json.loads(path.read_text())["format"] == 1
    clear_state(path)
    assert load_state(path) is None


def test_a_damaged_state_file_is_reported_not_crashed_on(tmp_path: Path) -> None:
    path = tmp_path / "practice_packet.json"
    path.write_text("{not json")
    with pytest.raises(PracticeError, match="could not be read"):
        load_state(path)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(PracticeError):
        load_state(path)


def test_staged_copies_have_neutral_names(kermany: Path, tmp_path: Path) -> None:
    packet = new_packet(PacketSpec(str(kermany), 5, seed=5), labelled_images(kermany))
    staged = stage_cases(packet, tmp_path / "stage")
    assert sorted(p.name for p in staged.values()) == [f"case-0{i}.png" for i in range(1, 6)]
    for case in packet.cases:
        assert staged[case.number].read_bytes() == Path(case.path).read_bytes()
    assert stage_cases(packet, tmp_path / "stage") == staged      # a resume reuses the copies


# ----------------------------------------------------------------------------- scoring
def _scored_state() -> PacketState:
    cases = (Case(1, "/a/NORMAL/1.png", "NORMAL"), Case(2, "/a/PNEUMONIA/p_bacteria.png", "BACTERIAL"),
             Case(3, "/a/PNEUMONIA/p_virus.png", "VIRAL"), Case(4, "/a/NORMAL/4.png", "NORMAL"),
             Case(5, "/a/PNEUMONIA/p2_virus.png", "VIRAL"), Case(6, "/a/NORMAL/6.png", "NORMAL"))
    results = (
        CaseResult(1, "normal", 90, 10.0, "NORMAL"),       # TN, model right
        CaseResult(2, "viral", 70, 20.0, "NORMAL"),        # TP (wrong class), model wrong
        CaseResult(3, "normal", 30, 30.0, "VIRAL"),        # FN, model right
        CaseResult(4, "bacterial", 50, 40.0, "NORMAL"),    # FP, model right
        CaseResult(5, "viral", 95, 50.0, None),            # TP, no model
    )                                                      # case 6 not read
    return PacketState(packet_id="p", created="2024-01-01T00:00:00+00:00", spec=PacketSpec("/a", 6, seed=1),
                       cases=cases, results=results, current=5, clock=PacketClock(600.0), finished=True,
                       finish_reason="time")


def test_scoring_against_the_known_labels_and_the_model() -> None:
    sheet = score_packet(_scored_state())
    assert (sheet.n_cases, sheet.n_read) == (6, 5)
    assert (sheet.true_positive, sheet.false_negative, sheet.true_negative, sheet.false_positive) == (2, 1, 1, 1)
    assert sheet.accuracy == pytest.approx(3 / 5)
    assert sheet.sensitivity == pytest.approx(2 / 3) and sheet.specificity == pytest.approx(1 / 2)
    assert sheet.class_accuracy == pytest.approx(2 / 5)          # 1 and 5; case 2 is the wrong subtype
    assert sheet.n_with_model == 4
    assert sheet.model_agreement == pytest.approx(1 / 4)         # only case 1
    assert sheet.model_accuracy == pytest.approx(3 / 4)
    assert [s.case.number for s in sheet.model_right_you_wrong] == [3, 4]
    assert [s.case.number for s in sheet.you_right_model_wrong] == [2]
    assert sheet.mean_seconds == pytest.approx(30.0) and sheet.median_seconds == pytest.approx(30.0)
    assert sheet.elapsed_s == 600.0 and sheet.finish_reason == "time"


def test_calibration_bins_by_confidence() -> None:
    bins = score_packet(_scored_state()).bins
    assert [(b.low, b.high) for b in bins] == [(0, 20), (20, 40), (40, 60), (60, 80), (80, 100)]
    assert [b.count for b in bins] == [0, 1, 1, 1, 2]
    assert bins[0].accuracy is None and bins[1].accuracy == 0.0 and bins[3].accuracy == 1.0
    assert bins[4].accuracy == 1.0 and bins[4].mean_confidence == pytest.approx(0.925)   # 90 and 95


def test_csv_has_one_row_per_case(tmp_path: Path) -> None:
    sheet = score_packet(_scored_state())
    rows = list(csv.DictReader(io.StringIO(score_csv(sheet))))
    assert len(rows) == 6
    assert rows[2]["your_call"] == "normal" and rows[2]["correct"] == "no" and rows[2]["model_correct"] == "yes"
    assert rows[5]["your_call"] == "" and rows[5]["correct"] == ""
    written = write_score_csv(sheet, tmp_path / "s.csv")
    assert written.read_text() == score_csv(sheet)


def test_the_pdf_is_one_page(tmp_path: Path) -> None:
    state = _scored_state()
    path = write_score_pdf(state, score_packet(state), tmp_path / "sheet.pdf")
    data = path.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") == 1     # one page
    png = write_score_pdf(state, score_packet(state), tmp_path / "sheet.png", dpi=40)
    assert png.read_bytes().startswith(b"\x89PNG")
