"""data → split → train → evaluate → export → the viewer's registry loads and predicts.

Tiny DenseNet121 at 32 px on a synthetic Kermany-shaped tree: minutes of CPU would be
needed for anything bigger. Both weight routes are exercised: from scratch (one stage)
and a local no-top weights file (frozen warm-up, then partial unfreezing).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow

SIZE = 32


def _synthetic_kermany(root: Path, per_class: int = 6) -> Path:
    """Normals: smooth images; bacterial: a bright blob; viral: diffuse streaks. Patient ids in names."""
    rng = np.random.default_rng(0)
    tree = root / "chest_xray" / "train"
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    for i in range(per_class):
        base = (80 + 40 * yy + rng.normal(0, 6, (64, 64))).clip(0, 255)
        normal = base
        bacterial = base + 120 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.6) ** 2) * 40)
        viral = base + 50 * (np.sin(xx * 40) > 0.5)
        for folder, name, image in (
            ("NORMAL", f"IM-{i:04d}-0001.png", normal),
            ("PNEUMONIA", f"person{i}_bacteria_{i}.png", bacterial),
            ("PNEUMONIA", f"person{i + 100}_virus_{i}.png", viral),
        ):
            (tree / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tree / folder / name), image.clip(0, 255).astype(np.uint8))
    return tree


def _train_args(tree: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(tree), "--task", "pneumonia3", "--name", "pneumonia3",
            "--run-dir", str(run_dir), "--input-size", str(SIZE), "--batch-size", "4",
            "--epochs", "1", "--patience", "2", *extra]


def _check_exported(models_dir: Path) -> None:
    from cxrviewer.core.io import load_image
    from cxrviewer.core.model.preprocessing import model_input
    from cxrviewer.core.model.registry import scan_models
    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier

    scan = scan_models(models_dir)
    assert [entry.name for entry in scan.models] == ["pneumonia3"] and not scan.problems
    card = json.loads((models_dir / "pneumonia3" / "model.json").read_text())
    assert card["labels"] == ["NORMAL", "BACTERIAL", "VIRAL"]
    assert card["input_size"] == SIZE
    assert card["training_data"]["split_counts"]["train"] > 0
    assert card["training_data"]["population"] == "pediatric"   # the viewer's adult-patient warning reads it
    assert "accuracy" in card["metrics"]["test"]
    assert card["known_limitations"]
    assert set(card["cam_absolute_max"]) == {"gradcam", "gradcam++", "hirescam", "cam"}
    assert (models_dir / "pneumonia3" / "split.csv").exists()
    assert (models_dir / "pneumonia3" / "evaluation" / "report.md").exists()
    engine = InferenceEngine(load_classifier(models_dir / "pneumonia3"))
    image = load_image(next((models_dir.parent / "chest_xray" / "train" / "NORMAL").glob("*.png")))
    probabilities = engine.predict(model_input(image, SIZE))
    assert probabilities.shape == (1, 3)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def test_from_scratch_single_stage_end_to_end(tmp_path: Path) -> None:
    from trainer.cli import main

    tree = _synthetic_kermany(tmp_path)
    run_dir = tmp_path / "run"
    assert main(_train_args(tree, run_dir)) == 0
    state = json.loads((run_dir / "state.json").read_text())
    assert state["done"] == ["full"]
    assert (run_dir / "split.csv").exists() and (run_dir / "full_log.csv").exists()
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0
    report = (run_dir / "evaluation" / "report.md").read_text()
    assert "confusion" in report.lower() and "AUC" in report
    for plot in ("confusion_matrix.png", "roc.png", "reliability.png", "training_curves.png"):
        assert cv2.imread(str(run_dir / "evaluation" / plot)) is not None, plot
    # Resume: a finished stage is not trained again, the split is reused.
    split_before = (run_dir / "split.csv").read_text()
    assert main(_train_args(tree, run_dir, "--resume")) == 0
    assert (run_dir / "split.csv").read_text() == split_before
    assert main(["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "models")]) == 0
    _check_exported(tmp_path / "models")


def test_local_weights_file_two_stages(tmp_path: Path) -> None:
    import keras

    from cxrviewer.core.model.architecture import build_classifier
    from trainer.cli import main

    backbone = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    weights_file = tmp_path / "densenet121_notop.weights.h5"
    backbone.save_weights(weights_file)
    model = build_classifier(3, SIZE, "densenet121", weights=weights_file)
    np.testing.assert_allclose(model.get_layer("conv1_conv").get_weights()[0],
                               backbone.get_layer("conv1_conv").get_weights()[0])
    tree = _synthetic_kermany(tmp_path)
    run_dir = tmp_path / "run"
    assert main(_train_args(tree, run_dir, "--weights", str(weights_file), "--warmup-epochs", "1",
                            "--unfreeze-last", "20")) == 0
    assert json.loads((run_dir / "state.json").read_text())["done"] == ["warmup", "finetune"]
    assert (run_dir / "warmup_log.csv").exists() and (run_dir / "finetune_log.csv").exists()


def test_unfreezing_keeps_batchnorm_frozen_and_head_trainable() -> None:
    import keras

    from cxrviewer.core.model.architecture import backbone_layer_names, build_classifier
    from trainer.train import _set_trainable

    model = build_classifier(3, SIZE, "densenet121")
    names = backbone_layer_names(model)
    _set_trainable(model, "warmup", 50)
    assert not any(model.get_layer(n).trainable for n in names)
    assert model.get_layer("predictions").trainable
    _set_trainable(model, "finetune", 50)
    tail = [model.get_layer(n) for n in names[-50:]]
    assert any(layer.trainable for layer in tail)
    assert not any(layer.trainable for layer in tail if isinstance(layer, keras.layers.BatchNormalization))
    assert not any(model.get_layer(n).trainable for n in names[:-50])
    _set_trainable(model, "full", 50)
    assert all(model.get_layer(n).trainable for n in names)


def _synthetic_manifest(root: Path, name: str, label: str, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / name / label
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,label,patient_id"]
    for i in range(n):
        image = (rng.normal(120 + 10 * seed, 20, (48, 40))).clip(0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{name}_{i}.png"), image)
        rows.append(f"{label}/{name}_{i}.png,{label},{name}-p{i}")
    (root / name / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / name / "manifest.csv"


def test_covid3_shaped_model_trains_with_cell_balance_and_per_source_metrics(tmp_path: Path) -> None:
    from trainer.cli import main

    tree = _synthetic_kermany(tmp_path)
    covid = _synthetic_manifest(tmp_path, "covid19", "COVID-19", 10, 1)
    adults = _synthetic_manifest(tmp_path, "nih_adult_normal", "NORMAL", 10, 2)
    run_dir = tmp_path / "covid_run"
    assert main(["train", "--data", str(covid), str(adults), str(tree), "--task", "covid3",
                 "--run-dir", str(run_dir), "--input-size", str(SIZE), "--batch-size", "4",
                 "--epochs", "1"]) == 0
    assert json.loads((run_dir / "labels.json").read_text()) == ["COVID-19", "NORMAL", "VIRAL"]
    split = (run_dir / "split.csv").read_text()
    assert "bacteria" not in split  # BACTERIAL is not a covid3 class
    log_text = (run_dir / "train.log").read_text()
    assert "sample weights balance every (source, label) cell" in log_text
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    import csv

    with open(run_dir / "split.csv", newline="") as handle:
        test_sources = {row["source"] for row in csv.DictReader(handle) if row["split"] == "test"}
    assert len(test_sources) > 1
    assert set(metrics["per_source"]) == test_sources
    assert main(["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "models")]) == 0
    card = json.loads((tmp_path / "models" / "covid3" / "model.json").read_text())
    assert "age" in card["shortcut_warning"]
    assert set(card["training_data"]["sources"]) == {"covid19", "nih_adult_normal", "chest_xray"}


def test_backbone_transfer_from_a_trained_classifier(tmp_path: Path) -> None:
    """`--weights our_model.keras` starts a new task from one of our own trained backbones."""
    from cxrviewer.core.model.architecture import build_classifier

    source = build_classifier(3, SIZE, "densenet121")
    kernel = source.get_layer("conv5_block16_2_conv").get_weights()[0]
    source.get_layer("conv5_block16_2_conv").set_weights([kernel + 1.0])
    source.save(tmp_path / "pneumonia3.keras")
    target = build_classifier(2, 64, "densenet121", weights=tmp_path / "pneumonia3.keras")
    np.testing.assert_allclose(target.get_layer("conv5_block16_2_conv").get_weights()[0], kernel + 1.0)
    assert target.output_shape[-1] == 2


def test_an_equalising_model_trains_exports_and_runs_in_the_viewer(tmp_path: Path) -> None:
    from cxrviewer.core.model.architecture import model_intensity
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model.onnx_engine import ONNX_CARD_KEY
    from cxrviewer.core.model.preprocessing import to_model_array
    from trainer.cli import main

    tree = _synthetic_kermany(tmp_path)
    run_dir = tmp_path / "run"
    assert main(_train_args(tree, run_dir, "--intensity", "equalise")) == 0
    assert json.loads((run_dir / "config.json").read_text())["intensity"] == "equalise"
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0
    assert main(["export", "--run-dir", str(run_dir), "--out", str(tmp_path / "models")]) == 0
    _check_exported(tmp_path / "models")
    card = json.loads((tmp_path / "models" / "pneumonia3" / "model.json").read_text())
    assert "histogram equalisation" in card["preprocessing"]["standardisation"]
    assert "histogram equalisation" in card["training"]["intensity"]
    assert ONNX_CARD_KEY in card          # the fast path exported and agreed with TensorFlow
    engine = ModelEngine.open(tmp_path / "models" / "pneumonia3")
    assert model_intensity(engine.tensorflow().loaded.model) == "equalise"
    image = cv2.imread(str(next((tree / "PNEUMONIA").glob("*bacteria*.png"))), cv2.IMREAD_GRAYSCALE)
    image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    brighter = (255.0 * (image / 255.0) ** 0.6).astype(np.uint8)
    both = engine.predict(to_model_array(np.stack([image, brighter])))
    np.testing.assert_allclose(both[0], both[1], atol=0.05)   # the film brightened: the same answer
    assert main(["heatmap-findings", "--model", str(tmp_path / "models" / "pneumonia3"), "--data", str(tmp_path)]) == 0
    measured = json.loads((tmp_path / "models" / "pneumonia3" / "model.json").read_text())["heatmap_findings"]["measured"]
    counts = {label: row["images"] for label, row in measured["by_true_label"].items()}
    assert sum(counts.values()) == card["training_data"]["split_counts"]["test"]
