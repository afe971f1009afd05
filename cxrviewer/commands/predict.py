"""`cxrviewer predict INPUT... [--model NAME] [--json] [--batch-size N]`: class probabilities.

Inputs are files or folders (searched recursively, `core.io.find_images`). Images are read
and preprocessed (`model_input`, the one preprocessing path) by a small thread pool a few
batches ahead, while the main thread runs `ModelEngine.predict_with_ood` (ONNX Runtime:
probabilities and the out-of-distribution verdict) on full batches, so a folder of 1,000
images runs in one process with the model busy all the time.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cxrviewer import NOT_FOR_CLINICAL_USE
from cxrviewer.commands._base import EXIT_OK, load_engine, positive_int, subcommand
from cxrviewer.core.errors import CxrError, ImageLoadError, printable_name, valid_unicode

if TYPE_CHECKING:
    import numpy as np

    from cxrviewer.core.memory import MemoryBudget
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model_call import ModelCall
    from cxrviewer.core.types import OodVerdict

log = logging.getLogger(__name__)

EXIT_SOME_FAILED = 1
LOADER_THREADS = 2
PREFETCH_BATCHES = 2


@dataclass(frozen=True)
class PreparedInput:
    """One input after reading and preprocessing: model input, or why there is none."""

    path: Path
    x: np.ndarray | None = None
    error: str | None = None
    flag: str = ""          # the image checks' reason when it cannot be like the training images


@dataclass(frozen=True)
class PredictionLine:
    """The result for one input: probabilities, or an error message."""

    path: Path
    model: str = ""
    labels: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    pneumonia_labels: tuple[str, ...] = ()
    error: str | None = None
    ood: OodVerdict | None = None
    operating_threshold: float | None = None   # the card's; None: the call is the top class

    @property
    def call(self) -> ModelCall:
        from cxrviewer.core.model_call import model_call, top_call

        if self.operating_threshold is None:
            return top_call(self.labels, self.probabilities)
        return model_call(self.labels, self.probabilities, self.operating_threshold)

    @property
    def top(self) -> str:
        return self.labels[max(range(len(self.probabilities)), key=self.probabilities.__getitem__)]

    @property
    def pneumonia_probability(self) -> float | None:
        if not self.pneumonia_labels:
            return None
        return float(sum(p for label, p in zip(self.labels, self.probabilities) if label in self.pneumonia_labels))

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": str(self.path), "error": self.error}
        record: dict[str, Any] = {
            "path": str(self.path),
            "model": self.model,
            "labels": list(self.labels),
            "probabilities": {label: round(p, 6) for label, p in zip(self.labels, self.probabilities)},
            "call": self.call.label,
            "call_rule": self.call.rule,
            "top": self.top,
        }
        pneumonia = self.pneumonia_probability
        if pneumonia is not None:
            record["pneumonia_probability"] = round(pneumonia, 6)
        record["ood"] = (self.ood.as_json() if self.ood is not None else
                         {"flagged": False, "score": None, "threshold": None,
                          "reason": f"model {self.model} has no out-of-distribution gate"})
        return record

    def to_text(self) -> str:
        if self.error is not None:
            return f"{self.path}  ERROR  {self.error}"
        parts = [f"{label} {p * 100:5.1f} %" for label, p in zip(self.labels, self.probabilities)]
        line = f"{self.path}  call {self.call.headline}  top {self.top}  |  " + "  ".join(parts)
        pneumonia = self.pneumonia_probability
        if pneumonia is not None:
            line += f"  |  pneumonia {pneumonia * 100:5.1f} %"
        if self.ood is not None and self.ood.flagged:
            line += f"  |  OUTSIDE TRAINING DATA: {self.ood.reason}"
        return line


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


def prepare_input(path: Path, input_size: int) -> PreparedInput:
    """Read one image and turn it into model input (runs in a loader thread).

    Risky files are decoded in one of the "predict" decode processes (`core.decode_pool`), so a
    decoder that loops is stopped at its deadline and that input gets an error line.
    """
    from cxrviewer.core.decode_pool import load_image_isolated
    from cxrviewer.core.model.engine import prepare_input as model_item

    try:
        item = model_item(load_image_isolated(path, pool="predict"), input_size)
        return PreparedInput(path, item.x, flag=item.flag)
    except ImageLoadError as exc:
        return PreparedInput(path, error=str(exc))
    except CxrError as exc:
        return PreparedInput(path, error=f"{printable_name(path.name)}: {exc}")
    except Exception as exc:  # one odd file must not stop a run over a thousand
        log.exception("preparing %s failed", path)
        return PreparedInput(path, error=f"{printable_name(path.name)}: unexpected {type(exc).__name__}: {exc}")


def prefetched(items: Sequence[Any], function: Callable[[Any], Any], workers: int, depth: int) -> Iterator[Any]:
    """`map(function, items)` in order, computed by `workers` threads at most `depth` items ahead."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cxrviewer-load") as pool:
        queue: deque[Future] = deque()
        position = 0
        while position < len(items) or queue:
            while position < len(items) and len(queue) < depth:
                queue.append(pool.submit(function, items[position]))
                position += 1
            yield queue.popleft().result()


def predict_paths(
    engine: ModelEngine,
    items: Sequence[tuple[Path, str | None]],
    batch_size: int = 8,
    workers: int = LOADER_THREADS,
    budget: MemoryBudget | None = None,
) -> Iterator[PredictionLine]:
    """One PredictionLine per item, in order; images are loaded ahead while the model runs.

    Each load first reserves its estimated peak memory from `budget` (default: one of
    `load_memory_limit()` bytes), so big files are read one after another, not all at once.
    """
    import numpy as np

    from cxrviewer.core.io import estimated_load_bytes
    from cxrviewer.core.memory import MemoryBudget, load_memory_limit

    labels = tuple(engine.labels)
    pneumonia = tuple(engine.card.pneumonia_labels)
    threshold = float(engine.card.operating_threshold)
    budget = budget if budget is not None else MemoryBudget(load_memory_limit())

    def prepare(item: tuple[Path, str | None]) -> PreparedInput:
        path, error = item
        if error is not None:
            return PreparedInput(path, error=error)
        with budget.reserve(estimated_load_bytes(path)):
            return prepare_input(path, engine.input_size)

    def run(batch: list[PreparedInput]) -> list[PredictionLine]:
        good = [(entry, entry.x) for entry in batch if entry.x is not None]
        probabilities: dict[int, tuple[float, ...]] = {}
        verdicts: dict[int, OodVerdict | None] = {}
        errors: dict[int, str] = {}
        if good:
            try:
                rows, found = engine.predict_with_ood(np.stack([x for _, x in good]), [e.flag for e, _ in good])
                probabilities = {id(entry): tuple(float(p) for p in row) for (entry, _), row in zip(good, rows)}
                verdicts = {id(entry): verdict for (entry, _), verdict in zip(good, found)}
            except CxrError:   # find the culprit: run the batch's images one by one
                for entry, x in good:
                    try:
                        rows, found = engine.predict_with_ood(x[np.newaxis], [entry.flag])
                        probabilities[id(entry)] = tuple(float(p) for p in rows[0])
                        verdicts[id(entry)] = found[0]
                    except CxrError as exc:
                        errors[id(entry)] = f"{entry.path.name}: {exc}"
        lines = []
        for entry in batch:
            if entry.error is not None or id(entry) in errors:
                lines.append(PredictionLine(entry.path, error=entry.error or errors[id(entry)]))
            else:
                lines.append(PredictionLine(entry.path, engine.name, labels, probabilities[id(entry)], pneumonia,
                                            ood=verdicts.get(id(entry)), operating_threshold=threshold))
        return lines

    pending: list[PreparedInput] = []
    loaded = 0
    for prepared in prefetched(items, prepare, workers, depth=batch_size * PREFETCH_BATCHES):
        pending.append(prepared)
        loaded += prepared.x is not None
        if loaded >= batch_size:
            yield from run(pending)
            pending, loaded = [], 0
    if pending:
        yield from run(pending)


def _valid_json(value: Any) -> Any:
    """Strings made valid Unicode (undecodable file-name bytes as "\\xff"): JSON is UTF-8."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {valid_unicode(str(key)): _valid_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_json(item) for item in value]
    return value


def write_lines(lines: Iterable[PredictionLine], as_json: bool, stream: TextIO) -> int:
    """Print every line as it comes; returns how many inputs failed."""
    failures = 0
    for line in lines:
        failures += line.error is not None
        text = json.dumps(_valid_json(line.to_json()), ensure_ascii=False) if as_json else printable_name(line.to_text())
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
    failures = write_lines(predict_paths(engine, items, args.batch_size), args.json, sys.stdout)
    log.info("predict: %d inputs, %d failed, model %s", len(items), failures, engine.name)
    return EXIT_SOME_FAILED if failures else EXIT_OK
