"""`cxr-train evaluate`: metrics, plots (matplotlib) and a Markdown report for a trained run."""
from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trainer import metrics as m
from trainer.config import TrainConfig
from trainer.data import read_split
from trainer.dataset import decode_samples

log = logging.getLogger(__name__)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: list[list[int]], labels: Sequence[str], path: Path, title: str) -> None:
    plt = _figure()
    array = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=110)
    ax.imshow(array, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(array):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > array.max() / 2 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_roc(probabilities: np.ndarray, targets: np.ndarray, labels: Sequence[str],
             pneumonia: np.ndarray | None, path: Path, title: str) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    for c, label in enumerate(labels):
        truth = (targets == c).astype(int)
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, probabilities[:, c])
            ax.plot(fpr, tpr, label=f"{label} vs rest (AUC {roc_auc_score(truth, probabilities[:, c]):.3f})")
    if pneumonia is not None:
        truth = (targets != list(labels).index("NORMAL")).astype(int)
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, pneumonia)
            ax.plot(fpr, tpr, "k--", label=f"pneumonia vs normal (AUC {roc_auc_score(truth, pneumonia):.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(before: np.ndarray, after: np.ndarray, targets: np.ndarray, path: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=110)
    for name, probs, style in (("raw", before, "o-"), ("temperature-scaled", after, "s-")):
        rows = m.reliability_bins(probs, targets)
        if rows:
            conf, acc, _ = zip(*rows)
            ax.plot(conf, acc, style, label=f"{name} (ECE {m.expected_calibration_error(probs, targets):.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.set_title("Reliability diagram", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_history(run_dir: Path, path: Path) -> None:
    logs = sorted(run_dir.glob("*_log.csv"))
    if not logs:
        return
    plt = _figure()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    offset = 0
    for log_file in logs:
        with open(log_file, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            continue
        epochs = np.arange(offset + 1, offset + len(rows) + 1)
        stage = log_file.stem.replace("_log", "")
        for ax, key in zip(axes, ("loss", "auc")):
            ax.plot(epochs, [float(r[key]) for r in rows], label=f"{stage} train")
            ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], "--", label=f"{stage} val")
            ax.set_title(key)
            ax.set_xlabel("epoch")
        offset += len(rows)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def evaluate_predictions(
    labels: Sequence[str],
    val_probs: np.ndarray, val_targets: np.ndarray,
    test_probs: np.ndarray, test_targets: np.ndarray,
    test_sources: Sequence[str] = (),
    operating_rule: str = "youden",
) -> dict[str, object]:
    """Temperature and operating point fitted on validation; every figure reported on test."""
    from trainer.operating_point import choose_threshold

    labels = list(labels)
    temperature = m.fit_temperature(val_probs, val_targets)
    val_scaled = m.apply_temperature(val_probs, temperature)
    test_scaled = m.apply_temperature(test_probs, temperature)
    result: dict[str, object] = {
        "temperature": temperature,
        "test": m.classification_metrics(test_scaled, test_targets, labels),
        "operating_rule": operating_rule,
        "calibration": {
            "ece_raw": m.expected_calibration_error(test_probs, test_targets),
            "ece_temperature_scaled": m.expected_calibration_error(test_scaled, test_targets),
        },
    }
    val_pneumonia = m.pneumonia_score(val_scaled, labels)
    test_pneumonia = m.pneumonia_score(test_scaled, labels)
    if val_pneumonia is not None and test_pneumonia is not None:
        normal = labels.index("NORMAL")
        threshold = choose_threshold(operating_rule, (val_targets != normal).astype(int), val_pneumonia)
        result["operating_threshold"] = threshold
        result["pneumonia_vs_normal"] = m.binary_summary((test_targets != normal).astype(int), test_pneumonia, threshold)
        result["pneumonia_vs_normal_at_0.5"] = m.binary_summary(
            (test_targets != normal).astype(int), test_pneumonia, 0.5)
    elif "COVID-19" in labels:
        covid = labels.index("COVID-19")
        threshold = choose_threshold(operating_rule, (val_targets == covid).astype(int), val_scaled[:, covid])
        result["operating_threshold"] = threshold
        result["covid_vs_rest"] = m.binary_summary((test_targets == covid).astype(int), test_scaled[:, covid], threshold)
    else:
        result["operating_threshold"] = 0.5
    result.update(m.subgroup_metrics(test_scaled, test_targets, labels, test_sources))
    if "per_source" in result:
        sources = np.asarray(test_sources)
        if "COVID-19" in labels and "NORMAL" in labels:
            covid, normal = labels.index("COVID-19"), labels.index("NORMAL")
            called_covid = test_scaled[:, covid] >= result["operating_threshold"]
            result["normals_called_covid_by_source"] = {
                source: float(called_covid[(sources == source) & (test_targets == normal)].mean())
                for source in sorted(set(test_sources)) if ((sources == source) & (test_targets == normal)).any()
            }
    return result


def _binary_line(title: str, b: dict, *, with_accuracy: bool) -> str:
    """One binary task at its operating threshold, as the model card lists it."""
    shown = [f"accuracy **{_fmt(b['accuracy'])}**"] if with_accuracy else []
    shown += [f"sensitivity {_fmt(b['sensitivity'])}", f"specificity {_fmt(b['specificity'])}"]
    return f"- {title}: AUC **{_fmt(b['auc'])}**, at the operating threshold {b['threshold']:.3f}: " + ", ".join(shown)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def class_table_lines(classification: dict, labels: Sequence[str]) -> list[str]:
    """Markdown lines: per-class precision/recall/F1/AUC table, then the confusion matrix."""
    lines = ["", "| class | precision | recall | F1 | AUC (one-vs-rest) | n |", "| --- | --- | --- | --- | --- | --- |"]
    for label in labels:
        row = classification["per_class"][label]
        lines.append(f"| {label} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['f1'])} | "
                     f"{_fmt(row['auc_ovr'])} | {row['support']} |")
    lines += ["", "Confusion matrix (rows true, columns predicted): " + ", ".join(labels), ""]
    lines += ["    " + " ".join(f"{v:6d}" for v in row) for row in classification["confusion_matrix"]]
    return lines


def markdown_report(name: str, split_name: str, labels: Sequence[str], result: dict, counts: dict) -> str:
    test = result["test"]
    lines = [
        f"# Evaluation of `{name}` on its internal {split_name} split",
        "",
        "Split by patient (no patient in two splits); temperature and operating threshold fitted on "
        "the validation split; every number below is computed on images the model did not train on "
        "and that were not used to choose the checkpoint.",
        "",
        "| split | images |", "| --- | --- |",
        *[f"| {split} | {n} |" for split, n in counts.items()],
        "",
        f"- accuracy: **{_fmt(test['accuracy'])}**, macro F1 {_fmt(test['macro_f1'])}, "
        f"macro one-vs-rest AUC {_fmt(test['macro_auc_ovr'])}",
        f"- temperature {result['temperature']:.3f}; ECE {result['calibration']['ece_raw']:.3f} raw → "
        f"{result['calibration']['ece_temperature_scaled']:.3f} scaled",
    ]
    for key, title in (("pneumonia_vs_normal", "pneumonia vs normal"), ("covid_vs_rest", "COVID-19 vs rest")):
        if key in result:
            lines.append(_binary_line(title, result[key], with_accuracy=key == "pneumonia_vs_normal"))
    for source, share in result.get("normals_called_covid_by_source", {}).items():
        lines.append(f"- NORMAL images from `{source}` called COVID-19: **{share:.1%}**")
    if "bacterial_vs_viral_auc" in result:
        lines.append(f"- bacterial vs viral AUC (true pneumonias only): **{_fmt(result['bacterial_vs_viral_auc'])}**")
    lines += class_table_lines(test, labels)
    if "per_source" in result:
        lines += ["", "| source | n | accuracy | " + " | ".join(f"recall {label}" for label in labels) + " |",
                  "| --- " * (3 + len(labels)) + "|"]
        for source, sm in result["per_source"].items():
            recalls = " | ".join(_fmt(sm["per_class"][label]["recall"]) if sm["per_class"][label]["support"]
                                 else "–" for label in labels)
            lines.append(f"| {source} | {sm['n']} | {_fmt(sm['accuracy'])} | {recalls} |")
    lines += ["", "![confusion](confusion_matrix.png) ![roc](roc.png) ![reliability](reliability.png)",
              "", "![training](training_curves.png)", ""]
    return "\n".join(lines)


def evaluate_run(run_dir: Path, split_name: str = "test") -> str:
    """Evaluate the final model of a run; writes evaluation/ with metrics.json, report.md and plots."""
    from trainer.train import load_trained, predict_images

    config = TrainConfig.load(run_dir / "config.json")
    labels = json.loads((run_dir / "labels.json").read_text())
    samples = read_split(run_dir / "split.csv")
    index = {label: i for i, label in enumerate(labels)}
    model = load_trained(run_dir)
    outputs = {}
    for split in ("val", split_name):
        items = [s for s in samples if s.split == split]
        images = decode_samples(items, config.input_size, run_dir / "cache" / f"{split}_{config.input_size}.npy")
        outputs[split] = (predict_images(model, images), np.array([index[s.label] for s in items]),
                          [s.source for s in items])
    result = evaluate_predictions(labels, outputs["val"][0], outputs["val"][1],
                                  outputs[split_name][0], outputs[split_name][1], outputs[split_name][2],
                                  operating_rule=config.operating_rule)
    result["split"] = split_name
    counts = {split: sum(1 for s in samples if s.split == split) for split in ("train", "val", "test")}
    result["split_counts"] = counts
    out = run_dir / "evaluation"
    out.mkdir(exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    test_scaled = m.apply_temperature(outputs[split_name][0], result["temperature"])
    plot_confusion(result["test"]["confusion_matrix"], labels, out / "confusion_matrix.png",
                   f"{config.name}: internal {split_name} split")
    plot_roc(test_scaled, outputs[split_name][1], labels, m.pneumonia_score(test_scaled, labels),
             out / "roc.png", f"{config.name}: ROC, internal {split_name} split")
    plot_reliability(outputs[split_name][0], test_scaled, outputs[split_name][1], out / "reliability.png")
    plot_history(run_dir, out / "training_curves.png")
    report = markdown_report(config.name, split_name, labels, result, counts)
    (out / "report.md").write_text(report, encoding="utf-8")
    log.info("evaluation written to %s", out)
    return report
