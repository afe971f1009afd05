"""Issue #14: `predict`'s loader threads (`core.model.batch`) share one memory budget, so big files load in turn."""
from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cxrviewer.core.io import estimated_load_bytes
from cxrviewer.core.memory import MemoryBudget, load_memory_limit
from cxrviewer.core.model import batch


def png_header_only(path: Path, rows: int, columns: int) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", columns, rows, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def test_estimate_comes_from_the_header_not_the_file_size(tmp_path: Path, make_dicom) -> None:
    big = png_header_only(tmp_path / "big.png", 10_000, 10_000)
    assert big.stat().st_size < 200
    assert estimated_load_bytes(big) >= 10_000 * 10_000 * 8
    dicom = make_dicom(np.zeros((300, 200), np.uint16))
    assert 300 * 200 * 8 <= estimated_load_bytes(dicom) < 300 * 200 * 40 + 3 * dicom.stat().st_size
    assert estimated_load_bytes(tmp_path / "missing.png") == 0


def test_budget_waits_until_enough_is_free_and_lets_an_oversized_load_run_alone() -> None:
    budget = MemoryBudget(100)
    entered = threading.Event()

    def second() -> None:
        with budget.reserve(70):
            entered.set()

    with budget.reserve(70):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.2)        # 70 + 70 > 100: the second load waits
    assert entered.wait(5)
    thread.join(5)
    with budget.reserve(10**12) as held:
        assert held == 100                  # capped: a load bigger than the budget runs alone
    assert budget.peak == 100


def test_load_memory_limit_reads_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CXRVIEWER_LOAD_MEMORY_MB", "300")
    assert load_memory_limit() == 300 * 2**20
    monkeypatch.setenv("CXRVIEWER_LOAD_MEMORY_MB", "lots")
    assert 256 * 2**20 <= load_memory_limit() <= 2 * 2**30


def _fake_engine() -> SimpleNamespace:
    return SimpleNamespace(
        labels=("A", "B"), name="fake", input_size=8, card=SimpleNamespace(pneumonia_labels=(), operating_threshold=0.5),
        predict_many=lambda x, batch_size: np.full((len(x), 2), 0.5, np.float32),
        predict_with_ood=lambda x, flags: (np.full((len(x), 2), 0.5, np.float32), [None] * len(x)),
    )


def _concurrent_loads(monkeypatch, paths: list[Path], budget: MemoryBudget) -> int:
    active, most = 0, 0
    lock = threading.Lock()

    def slow_prepare(path: Path, input_size: int) -> batch.PreparedInput:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return batch.PreparedInput(path, np.zeros((input_size, input_size, 3), np.float32))

    monkeypatch.setattr(batch, "prepare_input", slow_prepare)
    lines = list(batch.score_files(_fake_engine(), [(p, None) for p in paths], batch_size=4, budget=budget))
    assert [line.path for line in lines] == paths and all(line.error is None for line in lines)
    return most


def test_big_files_are_loaded_one_at_a_time(tmp_path: Path, monkeypatch) -> None:
    paths = [png_header_only(tmp_path / f"big_{i}.png", 10_000, 10_000) for i in range(4)]
    assert _concurrent_loads(monkeypatch, paths, MemoryBudget(2**30)) == 1


def test_small_files_still_load_two_at_a_time(tmp_path: Path, monkeypatch) -> None:
    paths = [png_header_only(tmp_path / f"small_{i}.png", 100, 100) for i in range(6)]
    assert _concurrent_loads(monkeypatch, paths, MemoryBudget(2**30)) == 2


def test_default_budget_is_used_without_one(tmp_path: Path, monkeypatch) -> None:
    used: list[int] = []
    original = MemoryBudget.reserve

    def spy(self: MemoryBudget, nbytes: int):
        used.append(nbytes)
        return original(self, nbytes)

    monkeypatch.setattr(MemoryBudget, "reserve", spy)
    path = png_header_only(tmp_path / "one.png", 1_000, 1_000)
    monkeypatch.setattr(batch, "prepare_input", lambda p, s: batch.PreparedInput(p, np.zeros((s, s, 3), np.float32)))
    list(batch.score_files(_fake_engine(), [(path, None)]))
    assert used and used[0] >= 1_000 * 1_000 * 8


def test_decode_deadline_reads_the_environment_like_the_budget(monkeypatch, caplog) -> None:
    from cxrviewer.core.decode_pool import DEFAULT_DECODE_SECONDS, decode_seconds

    monkeypatch.setenv("CXRVIEWER_DECODE_SECONDS", "2.5")
    assert decode_seconds() == 2.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("CXRVIEWER_DECODE_SECONDS", bad)
        caplog.clear()
        assert decode_seconds() == DEFAULT_DECODE_SECONDS
        assert "ignoring invalid CXRVIEWER_DECODE_SECONDS" in caplog.text
    monkeypatch.delenv("CXRVIEWER_DECODE_SECONDS")
    assert decode_seconds() == DEFAULT_DECODE_SECONDS
