"""Hostile files in the GUI and the CLI: a specific message naming the file, never a crash.

GUI: each bad file sits between two good ones; the viewer reports it in the non-modal banner
and the Problems list (no dialog) and both good images still open. CLI: exit status 2 and
exactly one line `cxrviewer: error: <file>: <reason>` on stderr, no traceback (that goes to
the log). Odd but legal files (1×1, 1×N, NaN/Inf, huge metadata, non-ASCII and very long
names) open in both. Also: a 5,000-file folder opened without freezing the event loop, rapid
paging, and the one-line error in an ASCII-only terminal.

The catalogue of files is in hostile.py; the loader's own branch-by-branch tests are in
tests/unit/test_io_*.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cxrviewer import cli
from cxrviewer.core.imaging import default_display
from cxrviewer.core.io import load_image
from tests.gui.helpers import open_and_wait, wait_for_image, wait_for_tags

from .hostile import BAD_FILES, ODD_FILES, Case, dicom, encode, save

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Case], Path]:
    """Build each case once per module (some take seconds), each in its own folder."""
    cache: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("hostile")

    def get(case: Case) -> Path:
        if case.id not in cache:
            folder = root / case.id
            folder.mkdir()
            cache[case.id] = case.build(folder)
        return cache[case.id]

    return get


@pytest.fixture(scope="module")
def good_pngs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("good")
    first = folder / "a_good.png"
    last = folder / "z_good.png"
    first.write_bytes(encode(".png", np.full((40, 60), 70, np.uint8)))
    last.write_bytes(encode(".png", np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))))
    return first, last


def assert_one_line_error(capsys, path: Path, fragments: tuple[str, ...]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"cxrviewer: error: {path.name}: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


# ================================================================================ the CLI
@pytest.mark.parametrize("case", BAD_FILES, ids=lambda c: c.id)
def test_cli_refuses_bad_file_with_one_line(case: Case, built, tmp_path, capsys, monkeypatch, log_dir) -> None:
    bad = built(case)
    if case.max_pixels:
        monkeypatch.setenv("CXRVIEWER_MAX_PIXELS", str(case.max_pixels))
    out = tmp_path / "never.png"
    assert cli.main(["render", str(bad), "-o", str(out)]) == 2
    assert_one_line_error(capsys, bad, case.fragments)
    assert not out.exists()
    log_text = (log_dir / "cxrviewer.log").read_text(encoding="utf-8")
    assert "Traceback" in log_text and bad.name in log_text   # the details are kept for later


@pytest.mark.parametrize("case", ODD_FILES, ids=lambda c: c.id)
def test_cli_renders_odd_file(case: Case, built, tmp_path, capsys) -> None:
    source = built(case)
    out = tmp_path / "odd.png"
    assert cli.main(["render", str(source), "-o", str(out), "--size", "64"]) == 0
    assert capsys.readouterr().err == ""
    written = cv2.imdecode(np.fromfile(out, np.uint8), cv2.IMREAD_UNCHANGED)
    image = load_image(source)
    assert written is not None and written.dtype == np.uint8 and max(written.shape) == 64
    expected = default_display(image)
    assert (written.shape[0] >= written.shape[1]) == (expected.shape[0] >= expected.shape[1])   # not transposed
    assert min(written.shape) == max(1, round(min(expected.shape) * 64 / max(expected.shape)))


def test_cli_error_line_survives_an_ascii_only_terminal(built, tmp_path) -> None:
    """A non-ASCII file name in the message must not turn into a UnicodeEncodeError traceback."""
    bad = tmp_path / "Röntgen_胸部_broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "CXRVIEWER_LOG_DIR": str(tmp_path / "logs")}
    result = subprocess.run(
        [sys.executable, "-m", "cxrviewer.cli", "render", str(bad), "-o", str(tmp_path / "o.png")],
        capture_output=True, env=env, cwd=REPO, timeout=180, check=False,
    )
    stderr = result.stderr.decode("ascii", "strict")   # really ASCII
    assert result.returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cxrviewer: error: R"), stderr
    assert "Traceback" not in stderr


# ================================================================================ the GUI
def _index_of(window, path: Path) -> int:
    paths = window.image_paths()
    assert path in paths, f"{path.name} is not listed in the study browser: {[p.name for p in paths]}"
    return paths.index(path)


@pytest.mark.parametrize("case", BAD_FILES, ids=lambda c: c.id)
def test_gui_reports_bad_file_and_opens_the_rest(case: Case, built, good_pngs, qtbot, window, monkeypatch) -> None:
    bad = built(case)
    first_good, last_good = good_pngs
    if case.max_pixels:
        monkeypatch.setenv("CXRVIEWER_MAX_PIXELS", str(case.max_pixels))

    shown = open_and_wait(qtbot, window, [first_good, bad, last_good])
    assert shown is not None and shown.path in (first_good, last_good)

    # Going to the bad file: a blank view naming the reason, a banner, no dialog.
    assert wait_for_image(qtbot, window, lambda: window.show_index(_index_of(window, bad))) is None
    problems = [p for p in window.problems() if p.path == bad]
    assert len(problems) == 1, window.problems()
    text = problems[0].text
    assert text.startswith(f"{bad.name}: "), text
    for fragment in case.fragments:
        assert fragment in text, (fragment, text)
    assert window.notice.isVisible() and bad.name in window.notice.text()
    assert bad.name in window.canvas.message()
    assert QApplication.activeModalWidget() is None
    assert window.current_image() is None

    # The rest of the study still opens.
    for good in (last_good, first_good):
        image = wait_for_image(qtbot, window, lambda g=good: window.show_index(_index_of(window, g)))
        assert image is not None and image.path == good
        assert window.canvas.image() is image


@pytest.mark.parametrize("case", ODD_FILES, ids=lambda c: c.id)
def test_gui_opens_odd_file(case: Case, built, qtbot, window) -> None:
    source = built(case)
    image = open_and_wait(qtbot, window, [source])
    assert image is not None and image.path == source
    assert window.problems() == []
    assert source.name in window.windowTitle()
    canvas = window.canvas
    for action in ("zoom_in", "zoom_in", "zoom_out", "rotate_cw", "flip_h", "fit", "invert", "reset"):
        window.action(action).trigger()
    canvas.flush_render()
    assert canvas.image() is image
    if case.note:
        assert case.note in window.notice.text()
    if case.id == "huge_metadata":
        wait_for_tags(qtbot, window)
        assert window.tag_dock.tags.total_rows() > 20_000


# ============================================================================ 5,000 files
class EventLoopProbe:
    """Ticks every 10 ms on the GUI thread; the longest gap between ticks is the worst freeze."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.gaps: list[int] = []
        self._last = 0
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._on_timer_timeout)

    def start(self) -> None:
        self.clock.start()
        self._last = 0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        self._on_timer_timeout()
        return max(self.gaps, default=0) / 1000.0

    def _on_timer_timeout(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append(now - self._last)
        self._last = now


def write_many_dicoms(folder: Path, count: int, per_series: int) -> list[Path]:
    """`count` small DICOMs in series of `per_series`, written from one template (fast)."""
    template = dicom(np.full((16, 16), 500, np.uint16), InstanceNumber="999999",
                     SeriesInstanceUID="1.2.826.0.1.3680043.8.498.9.900", SeriesNumber="900",
                     SOPInstanceUID="1.2.826.0.1.3680043.8.498.7.9000000")
    template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
    data = save(template, folder / "template.dcm").read_bytes()
    (folder / "template.dcm").unlink()
    assert [data.count(m) for m in (b"999999", b"8.498.9.900", b"8.498.7.9000000", b"900 ")] == [1, 1, 2, 1]
    paths = []
    for number in range(count):
        series = number // per_series
        blob = (data.replace(b"8.498.7.9000000", b"8.498.7.%07d" % (1_000_000 + number))
                    .replace(b"8.498.9.900", b"8.498.9.%03d" % (100 + series))
                    .replace(b"999999", b"%06d" % (number % per_series + 1))
                    .replace(b"900 ", b"%03d " % (100 + series)))
        path = folder / f"series{series:02d}" / f"IM{number:05d}.dcm"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        paths.append(path)
    return paths


def test_folder_of_5000_files_opens_without_freezing_the_event_loop(qtbot, window, tmp_path, capsys) -> None:
    folder = tmp_path / "big_study"
    folder.mkdir()
    write_many_dicoms(folder, 4000, per_series=500)
    pngs = folder / "pngs"
    pngs.mkdir()
    png = encode(".png", np.full((12, 12), 40, np.uint8))
    for number in range(990):
        (pngs / f"img{number:04d}.png").write_bytes(png)
    for number in range(10):
        (pngs / f"broken{number}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert sum(1 for p in folder.rglob("*") if p.is_file()) == 5000

    probe = EventLoopProbe()
    probe.start()
    started = time.perf_counter()
    window.open_paths([folder])
    returned_after = time.perf_counter() - started
    with qtbot.waitSignal(window.images_opened, timeout=300_000) as listed:
        pass
    with qtbot.waitSignal(window.image_changed, timeout=120_000) as first:
        pass
    listed_after = time.perf_counter() - started
    worst_freeze = probe.stop()
    with capsys.disabled():
        print(f"\n5,000 files: open_paths returned in {returned_after * 1000:.0f} ms, listed and first image "
              f"after {listed_after:.1f} s, longest event-loop freeze {worst_freeze * 1000:.0f} ms")
    assert len(listed.args[0]) == 5000
    assert first.args[0] is not None
    assert returned_after < 1.0           # listing happens on a worker thread
    # A hang detector, not a benchmark: listing on the GUI thread would freeze it for the whole
    # scan (tens of seconds at nice 19). Measured: ~0.1 s on a quiet machine; up to ~3.5 s when
    # nice-19 tests share 2 cores with a training run (the GIL goes to the scanning thread).
    assert worst_freeze < 10.0

    # Jump around the big list: the end, a broken file, back to the start.
    paths = window.image_paths()
    last = wait_for_image(qtbot, window, lambda: window.show_index(len(paths) - 1))
    broken = [i for i, p in enumerate(paths) if p.name.startswith("broken")]
    assert wait_for_image(qtbot, window, lambda: window.show_index(broken[0])) is None
    assert wait_for_image(qtbot, window, lambda: window.show_index(0)) is not None
    assert last is None or last.path == paths[-1]


# ============================================================================ rapid use
def test_rapid_paging_shows_the_last_requested_image(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "rapid"
    folder.mkdir()
    for number in range(40):
        (folder / f"im{number:02d}.png").write_bytes(encode(".png", np.full((64, 64), number * 5, np.uint8)))
    (folder / "im17_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    open_and_wait(qtbot, window, [folder])
    window.canvas.setFocus()
    for _ in range(45):                   # more key presses than images, no waiting in between
        QTest.keyClick(window.canvas, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.current_image() is not None
                    and window.current_image().path.name == "im39.png", timeout=60_000)
    for _ in range(10):
        window.previous_image()
        window.next_image()
    qtbot.waitUntil(lambda: window.current_image() is not None
                    and window.current_image().path.name == "im39.png", timeout=60_000)
    qtbot.wait(200)
    assert window.current_image().path.name == "im39.png"
    assert QApplication.activeModalWidget() is None


def test_unexpected_loader_error_is_a_notice_with_its_traceback_in_the_log(qtbot, window, monkeypatch, tmp_path,
                                                                          log_dir) -> None:
    from cxrviewer.core.io import raster as raster_io
    from cxrviewer.core.logs import setup_logging

    log_path = setup_logging()
    source = tmp_path / "boom.png"
    source.write_bytes(encode(".png", np.full((20, 20), 9, np.uint8)))

    def explode(*args, **kwargs):
        raise RuntimeError("simulated bug in the raster reader")

    monkeypatch.setattr(raster_io, "build_raster_image", explode)
    assert open_and_wait(qtbot, window, [source]) is None
    assert "boom.png: unexpected error" in window.problems()[0].text
    assert "simulated bug" in window.problems()[0].text
    for handler in __import__("logging").getLogger().handlers:
        handler.flush()
    log_text = log_path.read_text(encoding="utf-8")
    assert "Traceback" in log_text and "simulated bug in the raster reader" in log_text
