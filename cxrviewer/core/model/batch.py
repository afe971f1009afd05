"""The batched runner over image files: what `cxrviewer predict` and `cxr-train evaluate-model` share.

Images are read and preprocessed (`engine.prepare_input`: `model_input` plus the image checks,
the one preprocessing path) by a small thread pool a few batches ahead, while the calling
thread runs `ModelEngine.predict_with_ood` (probabilities and the out-of-distribution verdict)
on full batches, so a folder of 1,000 images runs in one process with the model busy all the time.

Risky files are decoded in the "predict" decode processes (`core.decode_pool`), so a decoder
that loops is stopped at its deadline; every load first reserves its estimated peak memory
from one `MemoryBudget`, so big files are read one after another. A file that cannot be read,
or that the model cannot run on, gives a `ScoredFile` with an error and the run goes on.

Here so that the trainer scores external data exactly as the viewer's command does without
importing `cxrviewer.commands` (the import-linter contract forbids it).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from cxrviewer.core.errors import CxrError, ImageLoadError, printable_name

if TYPE_CHECKING:
    from cxrviewer.core.memory import MemoryBudget
    from cxrviewer.core.model.engine import ModelEngine
    from cxrviewer.core.model_call import ModelCall
    from cxrviewer.core.types import OodVerdict

log = logging.getLogger(__name__)

LOADER_THREADS = 2
PREFETCH_BATCHES = 2

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class PreparedInput:
    """One input after reading and preprocessing: model input, or why there is none."""

    path: Path
    x: np.ndarray | None = None
    error: str | None = None
    flag: str = ""          # the image checks' reason when it cannot be like the training images


@dataclass(frozen=True)
class ScoredFile:
    """The model's answer for one file: probabilities and the gate's verdict, or an error message."""

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
        """The viewer's call (`core.model_call`: the card's operating threshold on its score)."""
        from cxrviewer.core.model_call import model_call, top_call

        if self.operating_threshold is None:
            return top_call(self.labels, self.probabilities)
        return model_call(self.labels, self.probabilities, self.operating_threshold)

    @property
    def top(self) -> str:
        """The arg-max class (can differ from the call)."""
        return self.labels[max(range(len(self.probabilities)), key=self.probabilities.__getitem__)]

    @property
    def pneumonia_probability(self) -> float | None:
        if not self.pneumonia_labels:
            return None
        return float(sum(p for label, p in zip(self.labels, self.probabilities) if label in self.pneumonia_labels))

    @property
    def ood_flagged(self) -> bool:
        """The model's out-of-distribution gate flagged this image (core/ood_gate.py)."""
        return self.ood is not None and self.ood.flagged


def prepare_input(path: Path, input_size: int) -> PreparedInput:
    """Read one image and turn it into model input (runs in a loader thread); never raises."""
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


def prefetched(items: Sequence[ItemT], function: Callable[[ItemT], ResultT], workers: int,
               depth: int) -> Iterator[ResultT]:
    """`map(function, items)` in order, computed by `workers` threads at most `depth` items ahead."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cxrviewer-load") as pool:
        queue: deque[Future[ResultT]] = deque()
        position = 0
        while position < len(items) or queue:
            while position < len(items) and len(queue) < depth:
                queue.append(pool.submit(function, items[position]))
                position += 1
            yield queue.popleft().result()


def _run_batch(engine: ModelEngine, batch: Sequence[PreparedInput]) -> list[ScoredFile]:
    """One model call for the batch's readable images; when it fails, one call per image finds the culprit."""
    answers: dict[int, tuple[tuple[float, ...], OodVerdict | None] | str] = {}
    good = [(entry, entry.x) for entry in batch if entry.x is not None]

    def score(inputs: Sequence[tuple[PreparedInput, np.ndarray]]) -> None:
        rows, verdicts = engine.predict_with_ood(np.stack([x for _, x in inputs]), [e.flag for e, _ in inputs])
        for (entry, _), row, verdict in zip(inputs, rows, verdicts):
            answers[id(entry)] = (tuple(float(p) for p in row), verdict)

    if good:
        try:
            score(good)
        except CxrError:
            for one in good:
                try:
                    score([one])
                except CxrError as exc:
                    answers[id(one[0])] = f"{one[0].path.name}: {exc}"
    card = engine.card
    scored = []
    for entry in batch:
        answer = answers.get(id(entry), entry.error or "")
        if isinstance(answer, str):
            scored.append(ScoredFile(entry.path, error=answer))
        else:
            scored.append(ScoredFile(entry.path, engine.name, tuple(engine.labels), answer[0],
                                     tuple(card.pneumonia_labels), ood=answer[1],
                                     operating_threshold=float(card.operating_threshold)))
    return scored


def score_files(
    engine: ModelEngine,
    items: Sequence[tuple[Path, str | None]],
    batch_size: int = 8,
    workers: int = LOADER_THREADS,
    budget: MemoryBudget | None = None,
) -> Iterator[ScoredFile]:
    """One ScoredFile per (path, error) item, in order; `error` set: that message, nothing is read.

    Images are loaded ahead while the model runs; each load first reserves its estimated peak
    memory from `budget` (default: one of `load_memory_limit()` bytes).
    """
    from cxrviewer.core.io import estimated_load_bytes
    from cxrviewer.core.memory import MemoryBudget, load_memory_limit

    shared = budget if budget is not None else MemoryBudget(load_memory_limit())

    def prepare(item: tuple[Path, str | None]) -> PreparedInput:
        path, error = item
        if error is not None:
            return PreparedInput(path, error=error)
        with shared.reserve(estimated_load_bytes(path)):
            return prepare_input(path, engine.input_size)

    pending: list[PreparedInput] = []
    loaded = 0
    for prepared in prefetched(items, prepare, workers, depth=batch_size * PREFETCH_BATCHES):
        pending.append(prepared)
        loaded += prepared.x is not None
        if loaded >= batch_size:
            yield from _run_batch(engine, pending)
            pending, loaded = [], 0
    if pending:
        yield from _run_batch(engine, pending)
