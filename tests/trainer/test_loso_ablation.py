"""Leave-one-source-out splits and tables; the ablation table on a tiny trained run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from trainer.loso import loso_split, loso_table


def _split(path: Path) -> Path:
    rows = [("a/1.png", "COVID-19", "p1", "hannover", "train"), ("a/2.png", "NORMAL", "p2", "hannover", "val"),
            ("b/1.png", "COVID-19", "p3", "figure1", "train"), ("b/2.png", "NORMAL", "p4", "figure1", "val"),
            ("b/3.png", "COVID-19", "p5", "figure1", "test")]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient_id", "source", "split"])
        writer.writerows(rows)
    return path


def test_loso_split_moves_every_image_of_the_source_to_test(tmp_path: Path) -> None:
    out = loso_split(_split(tmp_path / "split.csv"), "figure1", tmp_path / "run")
    rows = list(csv.DictReader(open(out)))
    assert {r["split"] for r in rows if r["source"] == "figure1"} == {"test"}
    assert [r["split"] for r in rows if r["source"] == "hannover"] == ["train", "val"]
    with pytest.raises(ValueError, match="no image of source"):
        loso_split(tmp_path / "split.csv", "nowhere", tmp_path / "run2")


def test_loso_table_states_recall_and_normals_called_covid() -> None:
    table = loso_table([{"source": "figure1", "n": 28, "recall_COVID-19": 0.5, "n_COVID-19": 26,
                         "recall_NORMAL": 1.0, "n_NORMAL": 2, "normals_called_covid": 0.0}])
    row = [line for line in table.splitlines() if line.startswith("| figure1")][0]
    assert "0.50 (n = 26)" in row and "1.00 (n = 2)" in row and "0%" in row
    assert "| – |" in row   # no VIRAL images in that source


@pytest.mark.slow
def test_ablation_and_held_out_calls_on_a_tiny_run(tmp_path: Path) -> None:
    import json

    from tests.trainer.test_end_to_end import _synthetic_kermany, _train_args
    from trainer.ablation import Recipe, write_ablation
    from trainer.cli import main

    tree = _synthetic_kermany(tmp_path)
    run_dir = tmp_path / "run"
    assert main(_train_args(tree, run_dir)) == 0
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0
    report = write_ablation(run_dir, [Recipe("tiny", str(run_dir / "final.keras"), 1.0, "sensitivity:0.9")])
    text = report.read_text()
    assert "| tiny | sensitivity:0.9 |" in text
    row = json.loads((run_dir / "evaluation" / "ablation.json").read_text())[0]
    assert row["sensitivity"] >= 0.9 and 0.0 <= row["specificity"] <= 1.0 and row["n"] > 0
    clean_balanced = (row["sensitivity"] + row["specificity"]) / 2
    assert 0.0 <= row["worst_shift_balanced"] <= clean_balanced + 1e-9   # the clean images are one of the shifts

    from trainer.loso import held_out_calls

    result = held_out_calls(run_dir, "chest_xray")
    assert result["n"] == 18 and 0.0 <= result["recall_NORMAL"] <= 1.0
