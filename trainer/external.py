"""`cxr-train evaluate-model`: a bundled model on a labelled set it never saw, as the viewer runs it.

For the held-back sets (the official Kermany test split, COVID-19 and adult normals from
other hospitals): nothing is fitted on these images. Each image goes through the viewer's
own path — `load_image` → `model_input` → `InferenceEngine` (the card's temperature) — via
`cxrviewer predict`'s batch runner (`core.model.batch.score_files`), and calls use the card's
operating threshold, so the numbers are the ones a trainee would see.

Inputs: a class-folder tree (Kermany subtypes from file names when the model is
NORMAL/BACTERIAL/VIRAL) or a CSV manifest `path,label[,patient_id][,source]`. `label_map`
renames data labels ("Viral Pneumonia=VIRAL"). A NORMAL/PNEUMONIA set on a model with
pneumonia subtypes is scored as pneumonia vs normal only.
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.labels import COVID
from cxrviewer.core.model.batch import ScoredFile
from trainer import metrics as m
from trainer.data import (
    Problem,
    Sample,
    dataset_name,
    discover_folder_tree,
    integrity_check,
    problems_table,
    read_manifest,
)
from trainer.evaluate import _fmt, class_table_lines, plot_confusion, plot_roc

log = logging.getLogger(__name__)

FULL = "full"
PNEUMONIA_BINARY = "pneumonia vs normal"


def discover(data: Path, model_labels: Sequence[str], label_map: Mapping[str, str] | None = None) -> list[Sample]:
    """Labelled samples from a folder tree or a manifest, labels renamed by `label_map`."""
    data = Path(data)
    if data.suffix.lower() == ".csv":
        samples = read_manifest(data, source_column=True)   # per-source metrics when the CSV names sources
    elif {"NORMAL", "BACTERIAL", "VIRAL"} <= set(model_labels):
        try:
            samples = discover_folder_tree(data, task="pneumonia3")
        except ValueError as exc:
            if "bacterial from viral" not in str(exc):
                raise
            samples = discover_folder_tree(data, task="pneumonia")   # no subtypes in the names
    else:
        samples = discover_folder_tree(data, task="folders")
    if label_map:
        samples = [replace(s, label=label_map.get(s.label, s.label)) for s in samples]
    return samples


def scoring_mode(data_labels: set[str], model_labels: Sequence[str], pneumonia_labels: Sequence[str]) -> str:
    if data_labels <= set(model_labels):
        return FULL
    if data_labels <= {"NORMAL", "PNEUMONIA"} and "NORMAL" in model_labels and pneumonia_labels:
        return PNEUMONIA_BINARY
    unknown = ", ".join(sorted(data_labels - set(model_labels)))
    raise ValueError(
        f"the data has labels the model does not know ({unknown}); the model's labels are "
        f"{', '.join(model_labels)}. Rename them with --label-map 'DATA=MODEL'.")


@dataclass(frozen=True)
class ScoredImage:
    """One external image the model scored: the labelled sample and the viewer's answer for its file."""

    sample: Sample
    answer: ScoredFile

    @property
    def probabilities(self) -> tuple[float, ...]:
        return self.answer.probabilities


def score_images(model_folder: Path, samples: Sequence[Sample], batch_size: int = 16) -> tuple[list[ScoredImage], list[Problem]]:
    """Probabilities and the gate's verdict for every readable sample, through `cxrviewer predict`'s runner
    (`core.model.batch`) and the viewer's engine."""
    from cxrviewer.core.model.batch import score_files
    from cxrviewer.core.model.engine import ModelEngine

    engine = ModelEngine.open(model_folder)
    scored: list[ScoredImage] = []
    problems: list[Problem] = []
    for sample, answer in zip(samples, score_files(engine, [(s.path, None) for s in samples], batch_size)):
        if answer.error is not None:
            problems.append(Problem(sample.path, "unreadable", answer.error))
        else:
            scored.append(ScoredImage(sample, answer))
    return scored, problems


def score_metrics(
    probabilities: np.ndarray,
    data_labels: Sequence[str],
    model_labels: Sequence[str],
    pneumonia_labels: Sequence[str],
    threshold: float,
    mode: str,
    sources: Sequence[str] = (),
) -> dict[str, object]:
    """Every figure at the card's threshold; nothing is fitted on these images."""
    model_labels = list(model_labels)
    result: dict[str, object] = {"mode": mode, "operating_threshold": threshold,
                                 "ece": None, "n": int(len(data_labels))}
    if mode == PNEUMONIA_BINARY:
        truth = np.array([label != "NORMAL" for label in data_labels], dtype=int)
        score = probabilities[:, [model_labels.index(label) for label in pneumonia_labels]].sum(axis=1)
        result["pneumonia_vs_normal"] = m.binary_summary(truth, score, threshold)
        if len(set(sources)) > 1:
            calls = ["PNEUMONIA" if c in pneumonia_labels else c for c in model_calls(probabilities, model_labels, threshold)]
            result["per_source_calls"] = per_source_calls(calls, list(data_labels), list(sources), ["PNEUMONIA"], score)
        return result
    targets = np.array([model_labels.index(label) for label in data_labels])
    result["classification"] = m.classification_metrics(probabilities, targets, model_labels)
    calls = model_calls(probabilities, model_labels, threshold)
    result["call"] = call_metrics(probabilities, targets, model_labels, threshold, calls)
    result["ece"] = m.expected_calibration_error(probabilities, targets)
    pneumonia = m.pneumonia_score(probabilities, model_labels)
    positive: list[str] = []
    positive_score = None
    if pneumonia is not None:
        truth = (targets != model_labels.index("NORMAL")).astype(int)
        result["pneumonia_vs_normal"] = m.binary_summary(truth, pneumonia, threshold)
        positive, positive_score = list(pneumonia_labels), pneumonia
    elif COVID in model_labels:
        covid = model_labels.index(COVID)
        result["covid_vs_rest"] = m.binary_summary((targets == covid).astype(int), probabilities[:, covid], threshold)
        positive, positive_score = [COVID], probabilities[:, covid]
    result.update(m.subgroup_metrics(probabilities, targets, model_labels, sources))
    if len(set(sources)) > 1:
        result["per_source_calls"] = per_source_calls(calls, list(data_labels), list(sources), positive,
                                                      positive_score)
    return result


def per_source_calls(calls: Sequence[str], truth: Sequence[str], sources: Sequence[str], positive: Sequence[str],
                     score: np.ndarray | None = None) -> dict[str, dict[str, object]]:
    """Per source, what the viewer's call gets right: recall of each class present and, when the model has a
    positive call (pneumonia, COVID-19), the share of that source's normals it calls positive and the AUC of
    its score between that source's positives and normals (ranking within one hospital, whatever the
    threshold does there)."""
    from sklearn.metrics import roc_auc_score

    table: dict[str, dict[str, object]] = {}
    for source in sorted(set(sources)):
        index = [i for i, s in enumerate(sources) if s == source]
        rows = [(calls[i], truth[i]) for i in index]
        recall = {label: {"n": sum(t == label for _, t in rows),
                          "recall": float(np.mean([c == label for c, t in rows if t == label]))}
                  for label in sorted({t for _, t in rows})}
        entry: dict[str, object] = {"n": len(rows), "call_accuracy": float(np.mean([c == t for c, t in rows])),
                                    "recall": recall}
        normals = [c for c, t in rows if t == "NORMAL"]
        if normals and positive:
            entry["normals_called_positive"] = float(np.mean([c in positive for c in normals]))
        ranked = [i for i in index if truth[i] == "NORMAL" or truth[i] in positive]
        if score is not None and normals and len(ranked) > len(normals):
            entry["auc_positive_vs_normal"] = float(roc_auc_score([truth[i] != "NORMAL" for i in ranked],
                                                                  [float(score[i]) for i in ranked]))
        table[source] = entry
    return table


def per_source_lines(table: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> list[str]:
    """The per-source table of the report: one row per source, the call's recall per class."""
    header = ["source", "n", "call accuracy", *[f"{label} recall" for label in labels], "normals called positive",
              "AUC positive vs normal"]
    lines = ["", "Per source (the viewer's call):", "", "| " + " | ".join(header) + " |",
             "|" + " --- |" * len(header)]
    for source, entry in table.items():
        recall = entry["recall"]
        cells = [f"{_fmt(recall[label]['recall'])} (n = {recall[label]['n']})" if label in recall else "–"
                 for label in labels]
        normals, auc = entry.get("normals_called_positive"), entry.get("auc_positive_vs_normal")
        lines.append(f"| `{source}` | {entry['n']} | {_fmt(entry['call_accuracy'])} | " + " | ".join(cells)
                     + f" | {_fmt(normals) if normals is not None else '–'} | {_fmt(auc) if auc is not None else '–'} |")
    return lines


def model_calls(probabilities: np.ndarray, model_labels: Sequence[str], threshold: float) -> list[str]:
    """The viewer's call for every row (`core.model_call`: the card's rule at its threshold)."""
    from cxrviewer.core.model_call import model_call

    return [model_call(model_labels, row, threshold).label for row in probabilities]


def call_metrics(probabilities: np.ndarray, targets: np.ndarray, model_labels: Sequence[str],
                 threshold: float, calls: Sequence[str]) -> dict[str, object]:
    """Accuracy and confusion matrix of the model's CALL (what the viewer says), not of the arg-max."""
    from cxrviewer.core.model_call import model_call

    model_labels = list(model_labels)
    called = np.array([model_labels.index(label) for label in calls])
    confusion = np.zeros((len(model_labels), len(model_labels)), dtype=int)
    for truth, index in zip(targets, called):
        confusion[int(truth), int(index)] += 1
    rule = model_call(model_labels, probabilities[0], threshold).rule if len(probabilities) else ""
    return {"rule": rule, "accuracy": float((called == targets).mean()) if len(targets) else None,
            "confusion_matrix": confusion.tolist(),
            "differs_from_top": int((called != probabilities.argmax(axis=1)).sum())}


def training_overlap(model_folder: Path, samples: Sequence[Sample]) -> dict[str, list[str]]:
    """Per split of the model's own split.csv, the evaluated file names that appear in it."""
    split = Path(model_folder) / "split.csv"
    if not split.is_file():
        return {}
    names = {s.path.name for s in samples}
    overlap: dict[str, list[str]] = {}
    with open(split, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = Path(row["path"]).name
            if name in names:
                overlap.setdefault(row.get("split") or "?", []).append(name)
    return {key: sorted(value) for key, value in sorted(overlap.items())}


def evaluate_model(
    model_folder: Path,
    data: Path,
    out: Path,
    label_map: Mapping[str, str] | None = None,
    batch_size: int = 16,
    record_in_card: bool = False,
) -> str:
    """Score `data` with the model in `model_folder`; writes report.md, metrics.json, predictions.csv, plots.

    `record_in_card` adds the summary to the model's card (`external_checks`); refused when
    any evaluated image is in the model's own split (it would not be an external check).
    """
    from cxrviewer.core.model.runtime import read_card

    model_folder, data, out = Path(model_folder), Path(data), Path(out)
    card = read_card(model_folder)
    labels = list(card.labels)
    pneumonia_labels = list(card.pneumonia_labels)
    samples = discover(data, labels, label_map)
    mode = scoring_mode({s.label for s in samples}, labels, pneumonia_labels)
    kept, problems = integrity_check(samples, decode=False)   # score_images decodes and reports the rest
    scored, unreadable = score_images(model_folder, kept, batch_size)
    problems += unreadable
    if not scored:
        raise ValueError(f"{data}: none of the {len(samples)} images could be scored")
    probabilities = np.array([s.probabilities for s in scored], dtype=np.float64)
    data_labels = [s.sample.label for s in scored]
    result = score_metrics(probabilities, data_labels, labels, pneumonia_labels, card.operating_threshold, mode,
                           [s.sample.source for s in scored])
    flagged = np.array([s.answer.ood_flagged for s in scored])
    result["ood"] = {"flagged": int(flagged.sum()), "rate": float(flagged.mean()),
                     "threshold": (card.extra.get("ood") or {}).get("threshold")}
    if flagged.any() and not flagged.all():
        keep = ~flagged
        result["unflagged"] = score_metrics(probabilities[keep], [label for label, k in zip(data_labels, keep) if k], labels,
                                            pneumonia_labels, card.operating_threshold, mode,
                                            [s.sample.source for s, k in zip(scored, keep) if k])
    overlap = training_overlap(model_folder, [s.sample for s in scored])
    result.update(model=card.name, weights_sha256=card.weights_sha256, data=str(data),
                  label_counts=dict(Counter(data_labels)), skipped=len(problems),
                  name_overlap_with_model_split={split: len(names) for split, names in overlap.items()})

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _write_predictions(out / "predictions.csv", scored, labels,
                       model_calls(probabilities, labels, card.operating_threshold))
    title = dataset_name(data)
    if "classification" in result:
        targets = np.array([labels.index(label) for label in data_labels])
        plot_confusion(result["classification"]["confusion_matrix"], labels, out / "confusion_matrix.png",
                       f"{card.name} on {title}")
        if len(set(targets.tolist())) > 1:   # a ROC needs positives and negatives
            plot_roc(probabilities, targets, labels, m.pneumonia_score(probabilities, labels), out / "roc.png",
                     f"{card.name}: ROC on {title}")
    report = external_report(card.name, card.weights_sha256, card.temperature, data, result, problems, overlap)
    (out / "report.md").write_text(report, encoding="utf-8")
    if record_in_card:
        if overlap:
            raise ValueError(f"not recorded in the model card: {sum(map(len, overlap.values()))} of these images are "
                             "in the model's own split, so this is not an external check (report written to "
                             f"{out})")
        add_to_card(model_folder, card_summary(result, title))
    log.info("external evaluation written to %s", out)
    return report


def card_summary(result: Mapping[str, object], data_name: str) -> dict[str, object]:
    """One model-card entry (`external_checks`) for this evaluation: what, how many, what it showed."""
    findings = []
    counts: dict[str, object] = {}
    binary = result.get("pneumonia_vs_normal") or result.get("covid_vs_rest")
    positive = "pneumonia" if "pneumonia_vs_normal" in result else "COVID-19"
    if "call" in result:
        findings.append(f"accuracy of the call {result['call']['accuracy']:.3f}")
    if binary:
        if binary["n_positive"] and binary["n_negative"]:
            findings.append(f"{positive} vs rest AUC {binary['auc']:.3f}")
        if binary["n_positive"]:
            findings.append(f"sensitivity {binary['sensitivity']:.3f} (n = {binary['n_positive']})")
        if binary["n_negative"]:
            called = round((1.0 - binary["specificity"]) * binary["n_negative"])
            negatives = "normal" if positive == "pneumonia" else "non-COVID-19"
            findings.append(f"{called} of {binary['n_negative']} {negatives} images called {positive} "
                            f"(specificity {binary['specificity']:.3f})")
            counts = {"positive_call": positive, "negatives": binary["n_negative"], "negatives_called_positive": called}
    return {
        "data": data_name,
        "images": result["n"],
        "labels": result["label_counts"],
        "operating_threshold": result["operating_threshold"],
        "finding": "; ".join(findings) + f" at the card's operating threshold {result['operating_threshold']:.3f}",
        "how": "cxr-train evaluate-model (nothing fitted on these images; viewer preprocessing and temperature)",
        **counts,
    }


def add_to_card(model_folder: Path, entry: Mapping[str, object]) -> None:
    """Append (or replace, for the same data) an `external_checks` entry in model.json."""
    path = Path(model_folder) / "model.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    checks = [check for check in card.get("external_checks", []) if check.get("data") != entry["data"]]
    card["external_checks"] = [*checks, dict(entry)]
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_predictions(path: Path, scored: Sequence[ScoredImage], labels: Sequence[str],
                       calls: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "source", *[f"p_{label}" for label in labels], "call"])
        for item, call in zip(scored, calls):
            writer.writerow([str(item.sample.path), item.sample.label, item.sample.source,
                             *[f"{p:.6f}" for p in item.probabilities], call])


def summary_lines(result: Mapping) -> list[str]:
    """Accuracy, AUC, sensitivity and specificity lines of one scored set."""
    lines: list[str] = []
    if "classification" in result:
        c = result["classification"]
        present = [row["f1"] for row in c["per_class"].values() if row["support"]]
        lines.append(f"- accuracy **{_fmt(c['accuracy'])}**, macro F1 over the classes present "
                     f"{_fmt(float(np.mean(present)))}, macro one-vs-rest AUC {_fmt(c['macro_auc_ovr'])}, "
                     f"ECE {_fmt(result['ece'])}")
    if "call" in result:
        c = result["call"]
        lines.append(f"- accuracy of the model's call (as the viewer shows it: {c['rule']}) "
                     f"**{_fmt(c['accuracy'])}**; the call differs from the top class on {c['differs_from_top']} images")
    for key, title in (("pneumonia_vs_normal", "pneumonia vs normal"), ("covid_vs_rest", "COVID-19 vs rest")):
        if key in result:
            b = result[key]
            parts = [f"AUC **{_fmt(b['auc'])}**"] if b["n_positive"] and b["n_negative"] else []
            parts.append(f"at {b['threshold']:.3f}: accuracy {_fmt(b['accuracy'])}")
            if b["n_positive"]:
                parts.append(f"sensitivity {_fmt(b['sensitivity'])} (n = {b['n_positive']})")
            if b["n_negative"]:
                parts.append(f"specificity **{_fmt(b['specificity'])}** (n = {b['n_negative']})")
            lines.append(f"- {title}: " + ", ".join(parts))
    return lines


def external_report(name: str, sha256: str, temperature: float, data: Path, result: dict,
                    problems: Sequence[Problem], overlap: Mapping[str, Sequence[str]]) -> str:
    counts = ", ".join(f"{label} {n}" for label, n in sorted(result["label_counts"].items()))
    lines = [
        f"# `{name}` on `{dataset_name(data)}` (external evaluation)",
        "",
        f"Model weights sha256 `{sha256[:16]}…`; data `{data}`: {result['n']} images scored ({counts}), "
        f"{len(problems)} skipped. Nothing was fitted on these images: probabilities carry the card's "
        f"temperature ({temperature:.3f}) and calls use the card's operating threshold "
        f"({result['operating_threshold']:.3f}), exactly as the viewer shows them.",
        "",
    ]
    if overlap:
        where = ", ".join(f"{split} {len(names)}" for split, names in overlap.items())
        example = next(iter(overlap.values()))[0]
        lines += [f"**Warning:** file names of these images also appear in the model's own split.csv "
                  f"({where}; e.g. `{example}`): those images are not unseen, and the training ones "
                  "make these numbers optimistic.", ""]
    lines += summary_lines(result)
    if "bacterial_vs_viral_auc" in result:
        lines.append(f"- bacterial vs viral AUC (true pneumonias only): **{_fmt(result['bacterial_vs_viral_auc'])}**")
    gate = result.get("ood") or {}
    if gate:
        lines.append(f"- out-of-distribution gate: **{gate['flagged']} of {result['n']}** "
                     f"({gate['rate']:.0%}) flagged as unlike the training images")
    if "unflagged" in result:
        lines += ["", f"On the {result['unflagged']['n']} images the gate lets through (the viewer shows a call "
                      "without \"Show anyway\" only for these):"]
        lines += summary_lines(result["unflagged"])
        lines.append("")
    if "classification" in result:
        c = result["classification"]
        lines += class_table_lines(c, list(c["per_class"]))
        present = [row["f1"] for row in c["per_class"].values() if row["support"]]
        lines += ["", "![confusion](confusion_matrix.png)" + (" ![roc](roc.png)" if len(present) > 1 else "")]
    if "per_source_calls" in result:
        classes = list(result["classification"]["per_class"]) if "classification" in result else ["NORMAL", "PNEUMONIA"]
        lines += per_source_lines(result["per_source_calls"], classes)
    if problems:
        lines += ["", "## Skipped images", "", problems_table(problems)]
    lines += ["", "Per-image probabilities: `predictions.csv`. For teaching and research — not for clinical use.", ""]
    return "\n".join(lines)
