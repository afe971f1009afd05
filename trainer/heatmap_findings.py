"""`cxr-train heatmap-findings`: where a model's Grad-CAM puts its weight on its internal-test images.

A card's heat-map findings are measured, not described from a few screenshots: for every
internal-test image the map of the model's call (the card's rule, as the viewer draws it) is
split by fixed regions of the whole image — the top fifth (neck and shoulders on these films),
the outer border of the rest, the centre — and by the viewer's own rough lung mask
(`core.xai.sanity.lung_mask`, the sanity check's rule), next to what a flat map would give on
the same mask. Results per true label go to the card's `heatmap_findings.measured`.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from cxrviewer.core.model.preprocessing import to_model_array
from cxrviewer.core.xai.sanity import heat_outside_mask, lung_mask
from trainer.data import Sample, read_split
from trainer.dataset import decode_samples

TOP_FIFTH = 0.20      # rows above this fraction: "top fifth"
BORDER = 0.08         # the outer band on the other sides


def regions(size: int) -> dict[str, np.ndarray]:
    """Boolean masks (size x size) of the top fifth, the border band below it, and the centre."""
    rows = (np.arange(size)[:, None] + 0.5) / size
    cols = (np.arange(size)[None, :] + 0.5) / size
    top = np.broadcast_to(rows < TOP_FIFTH, (size, size))
    border = ((rows > 1 - BORDER) | (cols < BORDER) | (cols > 1 - BORDER)) & ~top
    return {"top_fifth": top, "border": border, "centre": ~(top | border)}


def map_shares(cam: np.ndarray, image_u8: np.ndarray) -> dict[str, float | None]:
    """One map on one model input: share of mass per region, where the peak is, share outside the lung
    mask, and the share a flat map would have outside the same mask."""
    size = image_u8.shape[0]
    heat = cv2.resize(np.maximum(np.asarray(cam, np.float32), 0.0), (size, size), interpolation=cv2.INTER_LINEAR)
    total = float(heat.sum())
    masks = regions(size)
    peak = np.unravel_index(int(heat.argmax()), heat.shape)
    shares: dict[str, float | None] = {
        name: (float(heat[mask].sum()) / total if total > 0 else None) for name, mask in masks.items()}
    shares["peak_in_top_fifth"] = float(masks["top_fifth"][peak]) if total > 0 else None
    lungs = lung_mask(image_u8)
    shares["outside_lungs"] = heat_outside_mask(cam, lungs)
    shares["flat_map_outside_lungs"] = float(1.0 - lungs.mean()) if lungs.any() else None
    return shares


def _summarise(rows: list[dict[str, float | None]]) -> dict[str, float | int | None]:
    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(float(np.mean(values)), 3) if values else None

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(float(np.median(values)), 3) if values else None

    return {"images": len(rows), "mass_in_top_fifth": mean("top_fifth"), "mass_in_border": mean("border"),
            "mass_in_centre": mean("centre"), "peak_in_top_fifth": mean("peak_in_top_fifth"),
            "median_share_outside_lung_mask": median("outside_lungs"),
            "same_for_a_flat_map": median("flat_map_outside_lungs")}


def heatmap_findings(model_dir: Path, data_root: Path) -> dict[str, object]:
    """Measure, write `heatmap_findings.measured` into the card, return it."""
    from cxrviewer.core.model.engine import ModelEngine

    engine = ModelEngine.open(model_dir)
    test = [Sample(data_root / s.path, s.label, s.patient_id, s.source, s.split)
            for s in read_split(model_dir / "split.csv") if s.split == "test"]
    if not test:
        raise ValueError(f"{model_dir / 'split.csv'}: no test images")
    images = decode_samples(test, engine.input_size)
    by_label: dict[str, list[dict[str, float | None]]] = {}
    for image, sample in zip(images, test):
        _, cam = engine.predict_and_cam(to_model_array(image)[np.newaxis])   # the map of the model's call
        by_label.setdefault(sample.label, []).append(map_shares(cam, image))
    measured = {
        "split": "internal test (patients never trained on)",
        "regions": f"top fifth = rows above {TOP_FIFTH:.0%} of the image; border = the outer {BORDER:.0%} of the rest; "
                   "lung mask = the viewer's sanity-check mask",
        "by_true_label": {label: _summarise(rows) for label, rows in sorted(by_label.items())},
    }
    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    findings = card.get("heatmap_findings") if isinstance(card.get("heatmap_findings"), dict) else {}
    card["heatmap_findings"] = {**findings, "measured": measured}
    card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return measured
