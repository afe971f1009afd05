"""`cxrviewer predict INPUT... [--model NAME] [--json] [--batch-size N]`: class probabilities.

Inputs are files or folders (searched recursively, `core.io.find_images`). The run is
`core.model.batch.score_files` (shared with `cxr-train evaluate-model`): images are read and
preprocessed a few batches ahead by loader threads while the model (ONNX Runtime) runs on
full batches, so a folder of 1,000 images runs in one process with the model busy all the time.

One line per input, in input order: a JSON object with --json, else a readable line. Each
says the model's `call` (`core.model_call`: the card's operating threshold on its score) and
the `call_rule` that decided it; `top` (the arg-max class) is kept and can differ. A
file that cannot be read gives an error line and the run goes on; the exit status is 1
when any input failed, 0 otherwise; a model that cannot be loaded is a one-line error,
status 2 (before any output).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.commands._base import EXIT_OK, load_engine, positive_int, subcommand
from cxrviewer.core.errors import printable_name, valid_unicode
from cxrviewer.core.model.batch import ScoredFile, score_files

log = logging.getLogger(__name__)

EXIT_SOME_FAILED = 1


def json_record(line: ScoredFile) -> dict[str, Any]:
    """The --json object for one input."""
    if line.error is not None:
        return {"path": str(line.path), "error": line.error}
    record: dict[str, Any] = {
        "path": str(line.path),
        "model": line.model,
        "labels": list(line.labels),
        "probabilities": {label: round(p, 6) for label, p in zip(line.labels, line.probabilities)},
        "call": line.call.label,
        "call_rule": line.call.rule,
        "top": line.top,
    }
    pneumonia = line.pneumonia_probability
    if pneumonia is not None:
        record["pneumonia_probability"] = round(pneumonia, 6)
    record["ood"] = (line.ood.as_json() if line.ood is not None else
                     {"flagged": False, "score": None, "threshold": None,
                      "reason": f"model {line.model} has no out-of-distribution gate"})
    return record


def text_line(line: ScoredFile) -> str:
    """The readable line for one input."""
    if line.error is not None:
        return f"{line.path}  ERROR  {line.error}"
    parts = [f"{label} {p * 100:5.1f} %" for label, p in zip(line.labels, line.probabilities)]
    text = f"{line.path}  call {line.call.headline}  top {line.top}  |  " + "  ".join(parts)
    pneumonia = line.pneumonia_probability
    if pneumonia is not None:
        text += f"  |  pneumonia {pneumonia * 100:5.1f} %"
    if line.ood is not None and line.ood.flagged:
        text += f"  |  OUTSIDE TRAINING DATA: {line.ood.reason}"
    return text


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="image files or folders (folders are searched recursively)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="registered model name or model folder (default: the default model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input and line")
    parser.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                        help="images per model call (default 8)")


def expand_inputs(inputs: Iterable[Path]) -> list[tuple[Path, str | None]]:
    """(path, None) for every image to run, or (input, error) for a folder without images."""
    from cxrviewer.core.io import find_images

    expanded: list[tuple[Path, str | None]] = []
    for raw in inputs:
        found = find_images([raw])
        if raw.is_dir() and not found:
            expanded.append((raw, f"{printable_name(raw.name)}: no images found in this folder"))
        expanded.extend((path, None) for path in found)
    return expanded


def _valid_json(value: Any) -> Any:
    """Strings made valid Unicode (undecodable file-name bytes as "\\xff"): JSON is UTF-8."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {valid_unicode(str(key)): _valid_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_json(item) for item in value]
    return value


def write_lines(lines: Iterable[ScoredFile], as_json: bool, stream: TextIO) -> int:
    """Print every line as it comes; returns how many inputs failed."""
    failures = 0
    for line in lines:
        failures += line.error is not None
        text = json.dumps(_valid_json(json_record(line)), ensure_ascii=False) if as_json else printable_name(text_line(line))
        stream.write(text + "\n")
        stream.flush()
    return failures


@subcommand("predict", help="print the AI model's class probabilities for images and folders",
            configure=_configure_predict)
def run_predict(args: argparse.Namespace) -> int:
    items = expand_inputs(args.inputs)
    engine = load_engine(args.model)
    if not args.json:
        print(f"# model {engine.name} ({', '.join(engine.labels)}). {NOT_FOR_CLINICAL_USE}.", flush=True)
    failures = write_lines(score_files(engine, items, args.batch_size), args.json, sys.stdout)
    log.info("predict: %d inputs, %d failed, model %s", len(items), failures, engine.name)
    return EXIT_SOME_FAILED if failures else EXIT_OK
