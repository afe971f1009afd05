"""A practice case whose image the OOD gate flagged: the viewer withheld the model's call, so the score sheet
leaves it out of every figure about the model (the same rule as My Reads) and says how many; the trainee's own
accuracy, sensitivity and specificity still count it. Saved packets from before the flag load unflagged."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cxrviewer.teaching.practice import (
    Case,
    CaseResult,
    PacketClock,
    PacketSpec,
    PacketState,
    model_cell,
    model_pdf_cell,
    score_csv,
    score_packet,
    summary_lines,
)
from cxrviewer.teaching.reads import ModelWithheld

CASES = (Case(1, "/a/NORMAL/1.png", "NORMAL"), Case(2, "/a/PNEUMONIA/p_bacteria.png", "BACTERIAL"),
         Case(3, "/a/PNEUMONIA/p_virus.png", "VIRAL"), Case(4, "/a/NORMAL/4.png", "NORMAL"),
         Case(5, "/a/NORMAL/5.png", "NORMAL"))
RESULTS = (
    CaseResult(1, "normal", 90, 10.0, "NORMAL", "m"),                              # TN, agrees, model right
    CaseResult(2, "normal", 60, 20.0, "BACTERIAL", "m", outside_training_data=True),  # FN; model right: withheld
    CaseResult(3, "viral", 70, 30.0, "NORMAL", "m", outside_training_data=True),      # TP; model wrong: withheld
    CaseResult(4, "normal", 80, 40.0, "VIRAL", "m"),                               # TN, disagrees, model wrong
    CaseResult(5, "bacterial", 50, 50.0, "NORMAL", "m"),                           # FP, disagrees, model right
)


def state(results: tuple[CaseResult, ...] = RESULTS) -> PacketState:
    return PacketState(packet_id="p", created="2024-01-01T00:00:00+00:00", spec=PacketSpec("/a", 5, seed=1),
                       cases=CASES, results=results, current=4, clock=PacketClock(300.0), finished=True,
                       finish_reason="complete")


def test_the_rule_is_the_one_my_reads_uses() -> None:
    assert isinstance(RESULTS[0], ModelWithheld)
    assert [r.model_withheld for r in RESULTS] == [False, True, True, False, False]


def test_flagged_cases_are_left_out_of_the_model_figures_and_counted() -> None:
    sheet = score_packet(state())
    assert sheet.n_flagged == 2
    assert sheet.n_with_model == 3                              # cases 1, 4, 5
    assert sheet.n_agree_model == 1                             # case 1 (the old code: 2 of 5)
    assert sheet.n_model_correct == 2                           # cases 1 and 5 (the old code: 3 of 5)
    assert [s.case.number for s in sheet.model_right_you_wrong] == [5]     # not case 2
    assert [s.case.number for s in sheet.you_right_model_wrong] == [4]     # not case 3


def test_the_trainees_own_figures_count_every_case() -> None:
    sheet = score_packet(state())
    assert sheet.n_read == 5
    assert (sheet.true_positive, sheet.false_negative, sheet.true_negative, sheet.false_positive) == (1, 1, 2, 1)
    assert sheet.accuracy == pytest.approx(3 / 5)
    assert sheet.sensitivity == pytest.approx(1 / 2) and sheet.specificity == pytest.approx(2 / 3)


def test_the_summary_says_how_many_flagged_cases_were_left_out() -> None:
    lines = summary_lines(score_packet(state()))
    model_line = next(line for line in lines if line.startswith("Agreement with the model's call"))
    assert model_line == ("Agreement with the model's call: 33 % (1/3); the model's accuracy on these cases 67 % "
                          "(2 flagged cases not counted: outside the model's training data, its call was withheld)")
    assert "Accuracy (normal / abnormal): 60 % (3/5)" in lines


def test_a_packet_with_every_case_flagged_has_no_model_figures() -> None:
    flagged = tuple(CaseResult(r.number, r.call, r.confidence, r.seconds, r.model_label, r.model_name, True)
                    for r in RESULTS)
    sheet = score_packet(state(flagged))
    assert (sheet.n_with_model, sheet.n_flagged) == (0, 5)
    assert sheet.model_agreement is None and sheet.model_accuracy is None
    assert not sheet.model_right_you_wrong and not sheet.you_right_model_wrong
    assert any(line == "Agreement with the model's call: — (5 flagged cases not counted: outside the model's "
               "training data, its call was withheld)" for line in summary_lines(sheet))


def test_no_flag_no_note() -> None:
    unflagged = tuple(CaseResult(r.number, r.call, r.confidence, r.seconds, r.model_label, r.model_name)
                      for r in RESULTS)
    sheet = score_packet(state(unflagged))
    assert (sheet.n_with_model, sheet.n_flagged) == (5, 0)
    assert not any("flagged" in line for line in summary_lines(sheet))


def test_the_csv_marks_withheld_cases_and_leaves_their_model_scores_empty() -> None:
    rows = list(csv.DictReader(io.StringIO(score_csv(score_packet(state())))))
    assert [row["model_withheld"] for row in rows] == ["no", "yes", "yes", "no", "no"]
    assert rows[1]["model_call"] == "BACTERIAL"                         # what the model said is kept
    assert rows[1]["model_correct"] == "" and rows[1]["agrees_with_model"] == ""
    assert rows[1]["correct"] == "no"                                   # the trainee's own mark stays
    assert rows[0]["model_correct"] == "yes" and rows[0]["agrees_with_model"] == "yes"
    assert sum(row["agrees_with_model"] == "yes" for row in rows) == 1  # matches the sheet's figure


def test_the_model_column_says_withheld() -> None:
    assert model_cell(RESULTS[1]) == "withheld (BACTERIAL)"
    assert model_cell(RESULTS[0]) == "NORMAL"
    assert model_cell(CaseResult(9, "normal", 50, 1.0)) == "—"
    assert model_cell(None) == ""


def test_the_pdf_model_column_keeps_a_withheld_call_whole() -> None:
    assert model_pdf_cell(RESULTS[1]) == "⚠ BACTERIAL"
    assert model_pdf_cell(RESULTS[0]) == "NORMAL"
    assert model_pdf_cell(CaseResult(9, "normal", 50, 1.0)) == "—"


def test_the_flag_survives_saving_and_a_packet_saved_without_it_loads_unflagged() -> None:
    saved = state()
    loaded = PacketState.from_json(saved.to_json())
    assert [r.outside_training_data for r in loaded.results] == [False, True, True, False, False]
    assert score_packet(loaded).n_flagged == 2

    data = json.loads(saved.to_json())
    for result in data["results"]:
        del result["outside_training_data"]                 # a packet saved before the flag existed
    old = PacketState.from_json(json.dumps(data))
    assert not any(r.outside_training_data for r in old.results)
    assert score_packet(old).n_with_model == 5 and score_packet(old).n_flagged == 0


def test_the_flag_is_recorded_with_the_call_and_with_a_late_model_call() -> None:
    fresh = PacketState(packet_id="q", created="2024-01-01T00:00:00+00:00", spec=PacketSpec("/a", 5, seed=1),
                        cases=CASES).started(0.0)
    called = fresh.with_call("normal", 50, 5.0, "NORMAL", "m", outside_training_data=True)
    assert called.result_for(1).model_withheld
    late = fresh.with_call("normal", 50, 5.0).with_model_label(1, "NORMAL", "m", outside_training_data=True)
    assert late.result_for(1).model_withheld and late.result_for(1).model_label == "NORMAL"
