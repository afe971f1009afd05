"""Leave-one-source-out: train without source S, test on S — the honest estimate for a new hospital.

A source's internal test split shares its hospital, devices and markers with the training data;
a model that has never seen the source at all is what a trainee's own hospital looks like to it.
The calls are the viewer's (`core.model_call` at the LOSO run's own validation-fitted
temperature and threshold), so the numbers are those a user of that model would see.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cxrviewer.core.model_call import model_call
from trainer import metrics as m
from trainer.data import read_split
from trainer.dataset import decode_samples


def loso_split(split_csv: Path, source: str, run_dir: Path) -> Path:
    """`split_csv` with every image of `source` moved to test (so never trained on or validated)."""
    with open(split_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not any(r["source"] == source for r in rows):
        raise ValueError(f"{split_csv.name}: no image of source {source!r}")
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "split.csv"
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "split": "test"} if row["source"] == source else row)
    return out


def held_out_calls(run_dir: Path, source: str) -> dict[str, object]:
    """Recall per class and normals called COVID-19 on the held-out source, with the viewer's calls."""
    from trainer.train import load_trained, predict_images

    labels = json.loads((run_dir / "labels.json").read_text())
    fitted = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    samples = [s for s in read_split(run_dir / "split.csv") if s.source == source]
    size = int(json.loads((run_dir / "config.json").read_text())["input_size"])
    probs = m.apply_temperature(predict_images(load_trained(run_dir), decode_samples(samples, size)),
                                float(fitted["temperature"]))
    calls = [model_call(labels, list(map(float, p)), float(fitted["operating_threshold"])).label for p in probs]
    truth = [s.label for s in samples]
    result: dict[str, object] = {"source": source, "n": len(samples),
                                 "threshold": float(fitted["operating_threshold"])}
    for label in labels:
        chosen = [c for c, t in zip(calls, truth) if t == label]
        if chosen:
            result[f"recall_{label}"] = float(np.mean([c == label for c in chosen]))
            result[f"n_{label}"] = len(chosen)
    normals = [c for c, t in zip(calls, truth) if t == "NORMAL"]
    if normals and "COVID-19" in labels:
        result["normals_called_covid"] = float(np.mean([c == "COVID-19" for c in normals]))
    return result


def loso_table(rows: Sequence[dict[str, object]]) -> str:
    def cell(row: dict[str, object], key: str) -> str:
        return f"{row[key]:.2f} (n = {row[key.replace('recall_', 'n_')]})" if key in row else "–"

    lines = ["## Leave one source out", "",
             "Each row: a model trained with the same recipe (fewer epochs) on every source but S, "
             "tested on all of S; calls at that model's own validation-fitted threshold.", "",
             "| held-out source S | images | COVID-19 recall | VIRAL recall | NORMAL recall | normals called COVID-19 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        called = f"{row['normals_called_covid']:.0%}" if "normals_called_covid" in row else "–"
        lines.append(f"| {row['source']} | {row['n']} | {cell(row, 'recall_COVID-19')} | "
                     f"{cell(row, 'recall_VIRAL')} | {cell(row, 'recall_NORMAL')} | {called} |")
    return "\n".join(lines) + "\n"
