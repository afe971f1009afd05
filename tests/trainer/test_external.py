"""`cxr-train evaluate-model`: a model on a labelled set it never saw, scored as the viewer scores it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.model_factory import build_tiny_classifier, make_model_folder
from trainer import cli
from trainer.external import FULL, PNEUMONIA_BINARY, discover, evaluate_model, scoring_mode

LABELS = ("NORMAL", "BACTERIAL", "VIRAL")


def _write(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 40), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)
    return path


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("external_models")
    folder = make_model_folder(root, "tiny", labels=LABELS, model=build_tiny_classifier(3, 32, seed=2),
                               operating_threshold=0.6)
    with open(folder / "split.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient_id", "source", "split"])
        writer.writerow(["NORMAL/IM-0001-0001.png", "NORMAL", "IM-0001", "chest_xray", "train"])
    return folder


@pytest.fixture
def kermany_test(tmp_path: Path) -> Path:
    """A held-back-shaped tree: subtypes in the file names, one corrupt file, one seen in training."""
    tree = tmp_path / "chest_xray" / "test"
    for i in range(3):
        _write(tree / "NORMAL" / f"IM-{i + 1:04d}-0001.png", i)
        _write(tree / "PNEUMONIA" / f"person{i}_bacteria_{i}.png", 10 + i)
        _write(tree / "PNEUMONIA" / f"person{i + 50}_virus_{i}.png", 20 + i)
    (tree / "PNEUMONIA" / "person9_virus_9.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return tree


def test_scores_every_readable_image_as_the_viewer_does_and_reports_the_rest(model_folder, kermany_test, tmp_path) -> None:
    from cxrviewer.core.io import load_image
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

    out = tmp_path / "report"
    report = evaluate_model(model_folder, kermany_test, out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == FULL and metrics["n"] == 9 and metrics["skipped"] == 1
    assert metrics["label_counts"] == {"NORMAL": 3, "BACTERIAL": 3, "VIRAL": 3}
    assert metrics["operating_threshold"] == pytest.approx(0.6)
    assert metrics["pneumonia_vs_normal"]["n_positive"] == 6 and metrics["pneumonia_vs_normal"]["n_negative"] == 3
    assert sum(map(sum, metrics["classification"]["confusion_matrix"])) == 9
    assert "bacterial_vs_viral_auc" in metrics
    # the call is the card's rule (threshold 0.6 on the pneumonia probability), as the viewer shows it
    assert sum(map(sum, metrics["call"]["confusion_matrix"])) == 9
    assert metrics["call"]["rule"].startswith("pneumonia probability (BACTERIAL + VIRAL) ≥ 0.6")
    assert "accuracy of the model's call" in report
    assert metrics["name_overlap_with_model_split"] == {"train": 1}
    assert "person9_virus_9.png" in report and "not unseen" in report and "IM-0001-0001.png" in report
    assert (out / "confusion_matrix.png").is_file() and (out / "roc.png").is_file()

    with open(out / "predictions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9
    engine = InferenceEngine(load_classifier(model_folder))
    row = next(r for r in rows if r["path"].endswith("person1_bacteria_1.png"))
    expected = engine.predict(model_input(load_image(Path(row["path"])), engine.input_size))[0]
    assert [float(row[f"p_{label}"]) for label in LABELS] == pytest.approx(expected.tolist(), abs=1e-5)
    assert row["label"] == "BACTERIAL"
    from cxrviewer.core.model_call import model_call

    assert row["call"] == model_call(LABELS, expected.tolist(), 0.6).label


def test_a_normal_vs_pneumonia_set_is_scored_as_pneumonia_vs_normal(model_folder, tmp_path) -> None:
    tree = tmp_path / "binary"
    for i in range(2):
        _write(tree / "NORMAL" / f"n{i}.png", i)
        _write(tree / "PNEUMONIA" / f"p{i}.png", 5 + i)     # no subtype in the name
    samples = discover(tree, LABELS)
    assert {s.label for s in samples} == {"NORMAL", "PNEUMONIA"}
    assert scoring_mode({"NORMAL", "PNEUMONIA"}, LABELS, ("BACTERIAL", "VIRAL")) == PNEUMONIA_BINARY
    evaluate_model(model_folder, tree, tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["mode"] == PNEUMONIA_BINARY and "classification" not in metrics
    assert metrics["pneumonia_vs_normal"]["n_positive"] == 2 and metrics["pneumonia_vs_normal"]["n_negative"] == 2


def test_unknown_labels_are_refused_clearly_and_can_be_mapped(model_folder, tmp_path, capsys) -> None:
    manifest = tmp_path / "set" / "manifest.csv"
    _write(manifest.parent / "a.png", 1)
    _write(manifest.parent / "b.png", 2)
    manifest.write_text("path,label\na.png,Viral Pneumonia\nb.png,NORMAL\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"labels the model does not know \(Viral Pneumonia\)"):
        scoring_mode({s.label for s in discover(manifest, LABELS)}, LABELS, ("BACTERIAL", "VIRAL"))
    out = tmp_path / "mapped"
    assert cli.main(["evaluate-model", "--model", str(model_folder), "--data", str(manifest),
                     "--out", str(out), "--label-map", "Viral Pneumonia=VIRAL"]) == 0
    assert json.loads((out / "metrics.json").read_text())["label_counts"] == {"VIRAL": 1, "NORMAL": 1}
    capsys.readouterr()
    assert cli.main(["evaluate-model", "--model", str(model_folder), "--data", str(manifest),
                     "--out", str(tmp_path / "refused")]) == 2
    assert "--label-map" in capsys.readouterr().err
    assert cli.main(["evaluate-model", "--model", "no-such-model", "--data", str(manifest),
                     "--out", str(tmp_path / "nomodel")]) == 2
    assert "no model named 'no-such-model'" in capsys.readouterr().err


def test_a_manifest_naming_sources_gets_per_source_metrics(model_folder, tmp_path) -> None:
    manifest = tmp_path / "set" / "manifest.csv"
    for index in range(4):
        _write(manifest.parent / f"{index}.png", index + 1)
    manifest.write_text("path,label,source\n0.png,NORMAL,siteA\n1.png,VIRAL,siteA\n2.png,NORMAL,siteB\n"
                        "3.png,BACTERIAL,siteB\n", encoding="utf-8")
    out = tmp_path / "by_source"
    assert cli.main(["evaluate-model", "--model", str(model_folder), "--data", str(manifest), "--out", str(out)]) == 0
    per_source = json.loads((out / "metrics.json").read_text())["per_source"]
    assert {name: entry["n"] for name, entry in per_source.items()} == {"siteA": 2, "siteB": 2}
    calls = json.loads((out / "metrics.json").read_text())["per_source_calls"]
    assert {name: entry["n"] for name, entry in calls.items()} == {"siteA": 2, "siteB": 2}
    assert set(calls["siteA"]["recall"]) == {"NORMAL", "VIRAL"} and "normals_called_positive" in calls["siteB"]
    assert 0.0 <= calls["siteB"]["auc_positive_vs_normal"] <= 1.0          # NORMAL and BACTERIAL ranked
    report = (out / "report.md").read_text()
    assert "| `siteA` | 2 |" in report and "| `siteB` | 2 |" in report
    binary = tmp_path / "binary" / "manifest.csv"
    for index in range(4):
        _write(binary.parent / f"{index}.png", index + 1)
    binary.write_text("path,label,source\n0.png,NORMAL,siteA\n1.png,PNEUMONIA,siteA\n2.png,NORMAL,siteB\n"
                      "3.png,NORMAL,siteB\n", encoding="utf-8")
    assert cli.main(["evaluate-model", "--model", str(model_folder), "--data", str(binary),
                     "--out", str(tmp_path / "binary_out")]) == 0
    calls = json.loads((tmp_path / "binary_out" / "metrics.json").read_text())["per_source_calls"]
    assert set(calls["siteA"]["recall"]) == {"NORMAL", "PNEUMONIA"} and calls["siteB"]["recall"]["NORMAL"]["n"] == 2
    assert "auc_positive_vs_normal" in calls["siteA"] and "auc_positive_vs_normal" not in calls["siteB"]


def test_the_result_goes_into_the_card_only_for_images_the_model_never_saw(model_folder, kermany_test, tmp_path) -> None:
    import shutil

    from cxrviewer.core.model.card import ModelCard
    from cxrviewer.ui.dialogs.model_card_view import card_html

    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    with pytest.raises(ValueError, match="not recorded in the model card: 1 of these images are in the model's own split"):
        evaluate_model(folder, kermany_test, tmp_path / "seen", record_in_card=True)
    assert "external_checks" not in json.loads((folder / "model.json").read_text())

    (kermany_test / "NORMAL" / "IM-0001-0001.png").unlink()       # the one the model trained on
    evaluate_model(folder, kermany_test, tmp_path / "unseen", record_in_card=True)
    evaluate_model(folder, kermany_test, tmp_path / "again", record_in_card=True)   # replaces, not appends
    checks = json.loads((folder / "model.json").read_text())["external_checks"]
    assert len(checks) == 1 and checks[0]["data"] == "chest_xray" and checks[0]["images"] == 8
    metrics = json.loads((tmp_path / "unseen" / "metrics.json").read_text())
    negatives = metrics["pneumonia_vs_normal"]["n_negative"]
    called = round((1 - metrics["pneumonia_vs_normal"]["specificity"]) * negatives)
    assert f"{called} of {negatives} normal images called pneumonia" in checks[0]["finding"]
    assert (checks[0]["negatives_called_positive"], checks[0]["negatives"], checks[0]["positive_call"]) == (
        called, negatives, "pneumonia")
    assert "Checks on data it never saw" in card_html(ModelCard.read(folder))
