"""core.model.batch: the runner `cxrviewer predict` and `cxr-train evaluate-model` share."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cxrviewer.core.errors import InferenceError
from cxrviewer.core.memory import MemoryBudget
from cxrviewer.core.model import batch
from cxrviewer.core.types import OodVerdict


def _engine(calls: list[int]) -> SimpleNamespace:
    """Scores an input by its first pixel; a batch holding a negative pixel fails as a whole."""

    def predict_with_ood(x: np.ndarray, flags: list[str]):
        calls.append(len(x))
        if (x[:, 0, 0, 0] < 0).any():
            raise InferenceError("non-finite probabilities")
        first = x[:, 0, 0, 0]
        rows = np.stack([first, 1 - first], axis=1)
        return rows, [OodVerdict(bool(flag), None, None, flag) if flag else None for flag in flags]

    return SimpleNamespace(name="fake", labels=("A", "B"), input_size=2, predict_with_ood=predict_with_ood,
                           card=SimpleNamespace(pneumonia_labels=("B",), operating_threshold=0.5))


def test_one_failing_image_fails_alone_and_the_order_is_kept(monkeypatch) -> None:
    values = {"a.png": 0.25, "bad.png": -1.0, "c.png": 0.75}

    def fake_prepare(path: Path, size: int) -> batch.PreparedInput:
        flag = "lateral view" if path.name == "c.png" else ""
        return batch.PreparedInput(path, np.full((size, size, 1), values[path.name], np.float32), flag=flag)

    monkeypatch.setattr(batch, "prepare_input", fake_prepare)
    calls: list[int] = []
    items = [(Path("a.png"), None), (Path("empty"), "empty: no images found in this folder"),
             (Path("bad.png"), None), (Path("c.png"), None)]
    answers = list(batch.score_files(_engine(calls), items, batch_size=8, budget=MemoryBudget(2**30)))

    assert [a.path.name for a in answers] == ["a.png", "empty", "bad.png", "c.png"]
    assert calls == [3, 1, 1, 1]                    # the batch failed, then one call per image
    assert answers[0].probabilities == (0.25, 0.75) and answers[0].error is None
    assert answers[0].call.label == "B" and answers[0].top == "B" and answers[0].pneumonia_probability == 0.75
    assert answers[1].error == "empty: no images found in this folder" and answers[1].probabilities == ()
    assert answers[2].error == "bad.png: non-finite probabilities"
    assert answers[3].ood_flagged and not answers[0].ood_flagged
    assert answers[3].operating_threshold == 0.5 and answers[3].model == "fake"


def test_full_batches_run_as_soon_as_they_are_loaded(monkeypatch) -> None:
    monkeypatch.setattr(batch, "prepare_input",
                        lambda path, size: batch.PreparedInput(path, np.zeros((size, size, 1), np.float32)))
    calls: list[int] = []
    items = [(Path(f"{i}.png"), None) for i in range(7)]
    answers = list(batch.score_files(_engine(calls), items, batch_size=3, budget=MemoryBudget(2**30)))
    assert calls == [3, 3, 1] and len(answers) == 7 and all(a.error is None for a in answers)


def test_an_unreadable_file_is_an_error_answer_not_an_exception(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    prepared = batch.prepare_input(broken, 8)
    assert prepared.x is None and prepared.error and "broken.png" in prepared.error
