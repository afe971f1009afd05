"""`cxr-train export`: write `resources/models/<name>/` — weights, model card, split, evaluation."""
from __future__ import annotations

import csv
import json
import platform
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from cxrviewer.core.model.architecture import DEFAULT_CAM_LAYER, load_keras_model
from cxrviewer.core.model.card import ModelCard
from cxrviewer.core.model.export import export_model
from cxrviewer.core.model.preprocessing import PreprocessingSpec
from trainer.config import TrainConfig
from trainer.data import age_group, dataset_name, read_split

INTENDED_USE = (
    "Teaching and research: a second reader that lets radiology trainees compare their own call "
    "with a model's and see where the model looks. Not a medical device; not for diagnosis, "
    "triage or any clinical decision."
)

DATA_DESCRIPTIONS = {
    "chest_xray": (
        "Guangzhou Women and Children's Medical Center pediatric chest radiographs (Kermany et al., "
        "Cell 2018; CC BY 4.0), official training split only, re-encoded as 224x224 RGB JPEG "
        "(aspect ratio not kept). Children aged 1-5 years, anterior-posterior views, one centre."
    ),
    "covid19": "Hannover Medical School COVID-19 Image Repository (Winther et al., 2020; CC BY 3.0), adults.",
    "nih_adult_normal": "NIH ChestX-ray14 'No Finding' adult radiographs (Wang et al., CVPR 2017).",
    "ieee8023": ("ieee8023 COVID-19 image data collection (Cohen et al., arXiv:2003.11597; per-image licences, "
                 "mostly CC BY-NC-SA 4.0): adult teaching-file and journal images with markers and text; "
                 "COVID-19, adult viral pneumonia (mostly SARS-CoV-1 figures) and a few normals."),
    "actualmed": ("Actualmed COVID-19 Chest X-ray Dataset Initiative (research purposes only; cite COVID-Net, "
                  "Wang et al., arXiv:2003.09871): adult COVID-19 and COVID-test-negative 'no finding' films, Spain."),
    "figure1": ("Figure 1 COVID-19 Chest X-ray Dataset Initiative (research purposes only): adult COVID-19 "
                "images, often photographs of a monitor."),
}

KNOWN_LIMITATIONS = {
    "pneumonia3": [
        "Trained only on pediatric (age 1-5) AP radiographs from one hospital: adults, lateral views, "
        "other hospitals, devices and post-processing are outside its training data and its "
        "probabilities there are not trustworthy.",
        "Labels come from the source data set (image-level, no radiologist consensus per image in this "
        "copy); bacterial vs viral is a hard distinction even for experts and the model's is weaker.",
        "Input is the whole radiograph squeezed to a square without cropping, as in training; "
        "images with large borders, rotation, markers or lines may mislead it.",
        "It has no 'other finding' class: any abnormality is forced into normal/bacterial/viral.",
        "The heat map shows what drove the score, not where the disease is; check it against the image.",
    ],
    "covid3": [
        "SHORTCUT RISK: every COVID-19 image is an adult radiograph from one German hospital, every "
        "VIRAL image and most NORMAL images are pediatric (age 1-5) from one Chinese hospital. A model "
        "can score well here by recognising 'adult' or 'which hospital' instead of disease. Training "
        "weights each (source, label) cell equally and adds adult normals, but an adult image with "
        "any abnormality is still likely to be called COVID-19, and a child's image is unlikely to be.",
        "No adult viral (non-COVID) pneumonia and no pediatric COVID-19 in the training data: the model "
        "has never seen them.",
        "COVID-19 appearance overlaps with other viral and organising pneumonias; the radiograph alone "
        "does not diagnose COVID-19.",
        "The heat map shows what drove the score, not where the disease is; look for heat on text "
        "markers, borders or outside the lungs as a sign of a shortcut.",
    ],
}

SHORTCUT_WARNINGS = {
    "covid3": ("Trained on adult COVID-19 images next to mostly pediatric normal and viral images: "
               "it may detect age or hospital rather than disease. Teaching example of a shortcut, "
               "not a COVID-19 test."),
}


def _relative_data_path(path: str) -> str:
    """Make split paths portable: relative to the shared data folder when they point inside it."""
    parts = Path(path).parts
    if "data" in parts:
        return str(Path(*parts[parts.index("data") + 1:]))
    return path


def _write_portable_split(run_dir: Path, destination: Path) -> dict[str, int]:
    samples = read_split(run_dir / "split.csv")
    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient_id", "source", "split"])
        for s in samples:
            writer.writerow([_relative_data_path(str(s.path)), s.label, s.patient_id, s.source, s.split])
    return {split: sum(1 for s in samples if s.split == split) for split in ("train", "val", "test")}


def _describe_weights(weights: str) -> str:
    if weights in ("none", ""):
        return "none: random initialisation (no ImageNet weights)"
    if weights.endswith(".keras"):
        return f"backbone transferred from our own trained model ({Path(weights).parent.name})"
    return f"local file {Path(weights).name}" if weights != "imagenet" else "imagenet"


BALANCING = {
    "class": "class weights balanced on the training split",
    "source_label": "equal total weight per (source, label) cell, so the age group cannot stand in for the label",
    "group_label": ("equal total weight per (age group, label) cell, shared equally by its sources (capped at 5x "
                    "the mean), so being an adult carries no more COVID-19 than NORMAL"),
}


def _describe_stages(config: TrainConfig) -> str:
    if config.init_from:
        return f"one stage, every layer trained, all weights initialised from our own {Path(config.init_from).parent.name} v1"
    if not config.pretrained:
        return "one stage from random initialisation"
    return f"frozen-backbone warm-up then last {config.unfreeze_last} layers unfrozen (BatchNorm frozen)"


def _describe_rule(rule: str) -> str:
    if rule.startswith("sensitivity:"):
        return (f"the highest threshold keeping validation sensitivity >= {rule.split(':')[1]}, "
                "after temperature scaling (fitted on validation only)")
    return "Youden's J (sensitivity + specificity - 1) maximised on validation, after temperature scaling"


def population(sources: Sequence[str]) -> str:
    """Who the training images came from, for the viewer's adult-patient warning
    (`teaching.ood.card_population`): "pediatric", "adult" or "mixed"."""
    groups = {age_group(source) for source in sources}
    return groups.pop() if len(groups) == 1 else "mixed"


def card_extra(config: TrainConfig, metrics: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    sources = sorted({dataset_name(Path(d)) for d in config.data})
    import keras
    import tensorflow as tf

    return {
        "intended_use": INTENDED_USE,
        "not_for_clinical_use": True,
        "created": date.today().isoformat(),
        "training_data": {
            "sources": {s: DATA_DESCRIPTIONS.get(s, s) for s in sources},
            "population": population(sources),
            "split": ("by patient (all images of one patient in one split), stratified by label and "
                      f"source, seed {config.seed}, fractions train/val/test {list(config.fractions)}; "
                      "the exact split is split.csv in this folder"),
            "split_counts": counts,
            "integrity": "unreadable, duplicate (identical bytes) and wrong-size images excluded before "
                         "splitting; see evaluation/integrity.md",
        },
        "training": {
            "backbone_weights": _describe_weights(config.weights),
            "stages": _describe_stages(config),
            "epochs_max": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate if not config.pretrained or config.init_from
            else config.finetune_learning_rate,
            "optimizer": (f"AdamW (weight decay {config.weight_decay:g})" if config.optimizer == "adamw"
                          else "Adam"),
            "schedule": ("linear warm-up then cosine decay" if config.schedule == "cosine"
                         else "constant, reduced on validation-AUC plateau"),
            "label_smoothing": config.label_smoothing,
            **({"intensity": "per-image histogram equalisation as the graph's first step (preprocessing)"}
               if config.intensity == "equalise" else {}),
            "operating_rule": _describe_rule(config.operating_rule),
            "balancing": BALANCING[config.balance],
            "augmentation": {
                "rotation_deg": config.augment.rotation_deg, "shift": config.augment.shift,
                "zoom": config.augment.zoom, "brightness": config.augment.brightness,
                "contrast": config.augment.contrast, "horizontal_flip": config.augment.horizontal_flip,
                **({"acquisition": (f"each with probability {config.augment.p_acquisition}: crop up to "
                                    f"{config.augment.crop:.0%} a side, gamma 1/{1 + config.augment.gamma:g}-"
                                    f"{1 + config.augment.gamma:g}, sigmoid contrast curve, blur (sigma <= "
                                    f"{config.augment.blur_sigma}) or sharpening, noise (std <= "
                                    f"{config.augment.noise_std}), JPEG re-compression (quality "
                                    f"{config.augment.jpeg_quality[0]}-{config.augment.jpeg_quality[1]})")}
                   if config.augment.acquisition else {}),
            },
            "hardware": f"{platform.machine()} CPU, {platform.system()}",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "metrics": {
            "evaluated_on": ("internal test split: patients never seen in training or checkpoint "
                             "selection; temperature and operating threshold fitted on validation"),
            **{k: v for k, v in metrics.items() if k not in ("split_counts",)},
        },
        **({"shortcut_warning": SHORTCUT_WARNINGS[config.name]} if config.name in SHORTCUT_WARNINGS else {}),
        "known_limitations": KNOWN_LIMITATIONS.get(config.name, [
            "Trained on the data listed above only; other populations, views and hospitals are out of "
            "distribution.",
        ]),
    }


def export_run(run_dir: Path, models_dir: Path) -> Path:
    """Export a trained and evaluated run; returns the model folder."""

    config = TrainConfig.load(run_dir / "config.json")
    metrics_path = run_dir / "evaluation" / "metrics.json"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path}: run `cxr-train evaluate --run-dir {run_dir}` first")
    metrics = json.loads(metrics_path.read_text())
    labels = json.loads((run_dir / "labels.json").read_text())
    model = load_keras_model(run_dir / "final.keras")
    folder = models_dir / config.name
    folder.mkdir(parents=True, exist_ok=True)
    counts = _write_portable_split(run_dir, folder / "split.csv")
    evaluation = folder / "evaluation"
    if evaluation.exists():
        shutil.rmtree(evaluation)
    shutil.copytree(run_dir / "evaluation", evaluation)
    if (run_dir / "integrity.md").exists():
        shutil.copy(run_dir / "integrity.md", evaluation / "integrity.md")
    card: ModelCard = export_model(
        model, folder,
        name=config.name,
        labels=labels,
        backbone=config.backbone,
        cam_layer=DEFAULT_CAM_LAYER,
        task=config.task,
        temperature=float(metrics["temperature"]),
        operating_threshold=float(metrics["operating_threshold"]),
        preprocessing=PreprocessingSpec(config.input_size, standardisation=config.intensity).to_dict(),
        extra=card_extra(config, metrics, counts),
    )
    scale = absolute_cam_scale(folder, run_dir, config)
    card = replace(card, extra={**card.extra, "cam_absolute_max": scale})
    card.write(folder)
    from trainer.onnx_export import export_onnx
    from trainer.ood_fit import fit_ood

    export_onnx(folder)   # the viewer's fast path, checked against TensorFlow
    root = _data_root(read_split(run_dir / "split.csv"))
    if root is not None:  # the out-of-distribution gate, from the same split (cxr-train fit-ood)
        fit_ood(folder, root)
    return folder


def _data_root(samples) -> Path | None:
    """The folder the portable split's paths are relative to (the one named "data"), if any."""
    for sample in samples:
        parts = Path(sample.path).parts
        if "data" in parts:
            return Path(*parts[:parts.index("data") + 1])
    return None


def absolute_cam_scale(folder: Path, run_dir: Path, config: TrainConfig, n_images: int = 48) -> dict[str, float]:
    """Per CAM method, the 95th percentile of map maxima on validation images (top class,
    default layer): the viewer's "absolute" overlay scale, the same for every image."""
    import numpy as np

    from cxrviewer.core.model.runtime import InferenceEngine, load_classifier
    from cxrviewer.core.xai.cam import METHODS
    from trainer.dataset import decode_samples

    engine = InferenceEngine(load_classifier(folder))
    val = [s for s in read_split(run_dir / "split.csv") if s.split == "val"][:n_images]
    images = decode_samples(val, config.input_size, None)
    scale = {}
    for method in METHODS:
        layer = engine.cam_layer_for_dense_weights if method == "cam" else engine.default_layer
        maxima = [float(engine.predict_and_cam(image.astype(np.float32)[..., None], None, layer, method)[1].max())
                  for image in images]
        scale[method] = float(np.percentile(maxima, 95)) if maxima else 1.0
    return scale
