"""`cxr-train`: prepare, train, evaluate and export the models the viewer bundles."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainer.augment import AugmentConfig
from trainer.config import TrainConfig

TASK_LABELS = {
    "pneumonia": ("NORMAL", "PNEUMONIA"),
    "pneumonia3": ("NORMAL", "BACTERIAL", "VIRAL"),
    "covid3": ("COVID-19", "NORMAL", "VIRAL"),
    "folders": (),
}


def _setup_logging(run_dir: Path, log_name: str = "train.log") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(run_dir / log_name, encoding="utf-8"),
                                       logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    run_dir = Path(args.run_dir)
    saved = run_dir / "config.json"
    if args.resume and saved.exists():
        config = TrainConfig.load(saved)
        return replace(config, time_budget_min=args.time_budget_min or config.time_budget_min)
    task = args.task
    return TrainConfig(
        name=args.name or task,
        task="folders" if task == "covid3" else task,
        data=tuple(args.data),
        run_dir=str(run_dir),
        labels=tuple(args.labels.split(",")) if args.labels else TASK_LABELS.get(task, ()),
        backbone=args.backbone,
        input_size=args.input_size,
        weights=args.weights,
        batch_size=args.batch_size,
        epochs=args.epochs,
        warmup_epochs=args.warmup_epochs,
        unfreeze_last=args.unfreeze_last,
        learning_rate=args.lr,
        finetune_learning_rate=args.finetune_lr,
        dropout=args.dropout,
        patience=args.patience,
        seed=args.seed,
        max_per_class=args.max_per_class,
        split_from=args.split_from,
        balance=args.balance or ("source_label" if task == "covid3" else "class"),
        expected_size=(args.expected_size, args.expected_size) if args.expected_size else None,
        time_budget_min=args.time_budget_min,
        strategy=args.strategy,
        mixed_precision=args.mixed_precision,
        augment=AugmentConfig(horizontal_flip=args.hflip, acquisition=args.acquisition),
        label_smoothing=args.label_smoothing,
        intensity=args.intensity,
        init_from=args.init_from,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        operating_rule=args.operating_rule,
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (resumes an interrupted run with --resume)")
    p.add_argument("--data", nargs="+", required=True, help="class-folder trees and/or CSV manifests")
    p.add_argument("--task", choices=sorted(TASK_LABELS), default="pneumonia3")
    p.add_argument("--name", default="")
    p.add_argument("--labels", default="", help="comma-separated labels to keep, in output order")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--backbone", default="densenet121", choices=["densenet121", "densenet169", "densenet201"])
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--weights", default="none", help="none | imagenet | PATH to a local no-top weights file")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--warmup-epochs", type=int, default=3)
    p.add_argument("--unfreeze-last", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-per-class", type=int, default=None, help="cap per label within each source")
    p.add_argument("--split-from", default="",
                   help="split.csv of an earlier run: images in it keep their split (use with --weights RUN/final.keras)")
    p.add_argument("--balance", choices=["class", "source_label", "group_label"], default=None,
                   help="class weights (default) or equal weight per (source, label) cell (covid3 default)")
    p.add_argument("--expected-size", type=int, default=None,
                   help="report and exclude images that are not SIZE x SIZE (integrity pass)")
    p.add_argument("--time-budget-min", type=float, default=None)
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 (measure first)")
    p.add_argument("--hflip", action="store_true", help="allow horizontal flips (off: anatomy is not symmetric)")
    p.add_argument("--acquisition", action="store_true",
                   help="acquisition augmentation: gamma/contrast curves, blur/sharpen, noise, JPEG, crops")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--intensity", choices=["none", "equalise"], default="none",
                   help="equalise: per-image histogram equalisation as the graph's first step (monotone "
                        "brightness/contrast/gamma changes then leave the network's input unchanged)")
    p.add_argument("--init-from", default="", help="a trained .keras of the same architecture: all weights start from it")
    p.add_argument("--optimizer", choices=["adam", "adamw"], default="adam")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="adamw only")
    p.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau",
                   help="constant rate reduced on plateau, or linear warm-up then cosine decay")
    p.add_argument("--operating-rule", default="youden",
                   help="youden | sensitivity:0.95 (threshold fitted on validation after temperature scaling)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir with its saved config")


def _run_train(args: argparse.Namespace) -> int:
    from trainer.train import train

    _setup_logging(Path(args.run_dir))
    config = _config_from_args(args)
    if config.weights == "imagenet":
        logging.getLogger(__name__).warning(
            "--weights imagenet downloads from the internet; offline, pass a local no-top weights file")
    train(config)
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics, plots and a Markdown report for a trained run")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--split", default="test", choices=["val", "test"])


def _run_evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_run

    _setup_logging(Path(args.run_dir))
    report = evaluate_run(Path(args.run_dir), args.split)
    print(report)
    return 0


def _add_evaluate_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate-model",
                       help="a bundled model on a labelled set it never saw (e.g. a held-back test split)")
    p.add_argument("--model", required=True, help="model name in resources/models, or a model folder")
    p.add_argument("--data", required=True, help="class-folder tree or CSV manifest (path,label[,patient_id])")
    p.add_argument("--out", required=True, help="folder for report.md, metrics.json, predictions.csv and plots")
    p.add_argument("--label-map", action="append", default=[], metavar="DATA=MODEL",
                   help="rename a data label to the model's (repeatable), e.g. 'Viral Pneumonia=VIRAL'")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--add-to-card", action="store_true",
                   help="record the result in the model card's external_checks (refused if any image is in "
                        "the model's own split)")


def _label_map(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        data_label, sep, model_label = pair.partition("=")
        if not sep or not data_label.strip() or not model_label.strip():
            raise SystemExit(f"cxr-train: error: --label-map expects DATA=MODEL, got {pair!r}")
        mapping[data_label.strip()] = model_label.strip()
    return mapping


def _run_evaluate_model(args: argparse.Namespace) -> int:
    from cxrviewer.core.model.registry import resolve_model_folder
    from trainer.external import evaluate_model

    mapping = _label_map(args.label_map)
    out = Path(args.out)
    _setup_logging(out, "evaluate.log")
    try:
        folder = resolve_model_folder(args.model)
        report = evaluate_model(folder, Path(args.data), out, mapping, args.batch_size, args.add_to_card)
    except (LookupError, ValueError, FileNotFoundError) as exc:
        print(f"cxr-train: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(report)
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write resources/models/<name>/ (weights + model.json)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", default="resources/models", help="models folder")


def _run_export(args: argparse.Namespace) -> int:
    from trainer.export import export_run

    folder = export_run(Path(args.run_dir), Path(args.out))
    print(folder)
    return 0


def _add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="write model.onnx + head.npz beside a model's weights (the viewer's fast path)")
    p.add_argument("--model", required=True, help="model folder, e.g. resources/models/pneumonia3")


def _run_export_onnx(args: argparse.Namespace) -> int:
    from trainer.onnx_export import export_onnx

    try:
        card = export_onnx(Path(args.model))
    except (ValueError, FileNotFoundError) as exc:
        print(f"cxr-train: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model}: {card.extra['onnx']['checked_against_tensorflow']}")
    return 0


def _ood_summary(card: Any) -> str:
    entry = card.extra["ood"]
    return "\n".join([f"{card.name}: threshold {entry['threshold']}"] + [
        f"  {name}: {rates['flagged']:.1%} of {rates['images']} flagged" for name, rates in entry["flag_rates"].items()])


def _rule_summary(table: dict[str, Any]) -> str:
    chosen = table["chosen"]
    return f"chosen {chosen}: threshold {table['rules'][chosen]['threshold']:.4f}"


def _findings_summary(measured: dict[str, Any]) -> str:
    return json.dumps(measured["by_true_label"], indent=1)


# Commands that work on a bundled model folder and its split: name -> (help, "module:function", summary).
MODEL_FOLDER_COMMANDS: dict[str, tuple[str, str, Callable[[Any], str]]] = {
    "fit-ood": ("fit, calibrate and measure a model's out-of-distribution gate (ood.npz + card)",
                "trainer.ood_fit:fit_ood", _ood_summary),
    "operating-point": ("choose a pneumonia model's operating rule on validation under simulated acquisition "
                        "shifts; refit its card's threshold", "trainer.shift_rule:choose_operating_point",
                        _rule_summary),
    "heatmap-findings": ("where a model's heat maps lie on its internal-test images (regions, lung mask); "
                         "written to its card", "trainer.heatmap_findings:heatmap_findings", _findings_summary),
}


def _add_model_folder_commands(sub: argparse._SubParsersAction) -> None:
    for name, (help_text, _, _) in MODEL_FOLDER_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--model", required=True, help="model folder, e.g. resources/models/pneumonia3")
        p.add_argument("--data", default="../shared/data", help="folder the model's split.csv paths are relative to")


def _run_model_folder_command(args: argparse.Namespace) -> int:
    """`function(model folder, data folder)` and its summary, or a one-line error and exit 2."""
    import importlib

    from cxrviewer.core.errors import ModelLoadError

    _, target, summary = MODEL_FOLDER_COMMANDS[args.command]
    module, function = target.split(":")
    try:
        result = getattr(importlib.import_module(module), function)(Path(args.model), Path(args.data))
    except (ValueError, FileNotFoundError, ModelLoadError) as exc:
        print(f"cxr-train: error: {exc}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cxr-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_evaluate_model(sub)
    _add_export(sub)
    _add_export_onnx(sub)
    _add_model_folder_commands(sub)
    args = parser.parse_args(argv)
    handlers = {"train": _run_train, "evaluate": _run_evaluate, "evaluate-model": _run_evaluate_model,
                "export": _run_export, "export-onnx": _run_export_onnx,
                **{name: _run_model_folder_command for name in MODEL_FOLDER_COMMANDS}}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
