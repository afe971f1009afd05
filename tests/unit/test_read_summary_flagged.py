"""A read of an image the OOD gate flagged does not count for the model, in every figure about the model."""
from __future__ import annotations

import hashlib

from cxrviewer.teaching.reads import ReadRecord, summarise

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")
SAYS_VIRAL = (0.1, 0.1, 0.8)
SAYS_NORMAL = (0.8, 0.1, 0.1)


def read(n: int, call: str, probabilities: tuple[float, ...], known: str | None, flagged: bool) -> ReadRecord:
    return ReadRecord(image_sha256=hashlib.sha256(str(n).encode()).hexdigest(), call=call, confidence=70,
                      model_name="tiny", labels=LABELS, probabilities=probabilities, known_label=known,
                      outside_training_data=flagged)


RECORDS = [
    read(1, "viral", SAYS_VIRAL, "VIRAL", flagged=False),       # trainee right, model right
    read(2, "normal", SAYS_VIRAL, "NORMAL", flagged=False),     # trainee right, model wrong
    read(3, "viral", SAYS_VIRAL, "VIRAL", flagged=False),       # trainee right, model right
    read(4, "normal", SAYS_NORMAL, "VIRAL", flagged=True),      # trainee wrong, model wrong: withheld
    read(5, "viral", SAYS_NORMAL, "NORMAL", flagged=True),      # trainee wrong, model right: withheld
    read(6, "viral", SAYS_VIRAL, None, flagged=True),           # no label: flagged for agreement only
    read(7, "normal", SAYS_VIRAL, None, flagged=False),         # no label, disagrees with the model
]


def test_the_model_is_scored_against_labels_only_on_unflagged_reads() -> None:
    summary = summarise(RECORDS)
    assert (summary.n_model_agree_label, summary.n_model_with_label) == (2, 3)   # reads 1–3; old code: 3 of 5
    assert summary.n_model_label_flagged == 2                                     # reads 4 and 5
    assert summary.model_label_agreement == 2 / 3


def test_the_trainee_is_scored_on_every_labelled_read() -> None:
    summary = summarise(RECORDS)
    assert (summary.n_agree_label, summary.n_with_label) == (3, 5)


def test_agreement_with_the_model_leaves_out_every_flagged_read_with_a_model_call() -> None:
    summary = summarise(RECORDS)
    assert (summary.n_agree_model, summary.n_with_model, summary.n_flagged) == (2, 4, 3)   # reads 1, 2, 3, 7


def test_withheld_is_the_flag_and_nothing_else() -> None:
    assert [r.model_withheld for r in RECORDS] == [False, False, False, True, True, True, False]


def test_reads_without_a_model_or_a_label_are_not_counted_as_flagged() -> None:
    no_model = ReadRecord(image_sha256=hashlib.sha256(b"8").hexdigest(), call="normal", confidence=50,
                          known_label="NORMAL", outside_training_data=True)
    summary = summarise([no_model, read(9, "viral", SAYS_VIRAL, None, flagged=False)])
    assert (summary.n_flagged, summary.n_model_label_flagged, summary.n_model_with_label) == (0, 0, 0)
    assert summary.model_label_agreement is None
    assert (summary.n_agree_label, summary.n_with_label) == (1, 1)


def test_all_labelled_reads_flagged_leaves_no_figure_for_the_model() -> None:
    summary = summarise([r for r in RECORDS if r.outside_training_data])
    assert summary.model_label_agreement is None and summary.n_model_label_flagged == 2
    assert summary.model_agreement is None and summary.n_flagged == 3
