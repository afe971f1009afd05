"""Issue #14 in the GUI: a decode that hangs is stopped at its deadline and the viewer goes on;
every file whose header already says it cannot be opened is in Problems as soon as the folder
scan ends, before any of them is visited."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cxrviewer.core.decode_pool import DecodePool, replace_shared_pool, timeout_message
from cxrviewer.core.errors import printable_name

from . import hostile2
from .decode_hooks import HANG_MARKER
from .test_hostile_files import EventLoopProbe
from .test_hostile_folder import GUI_GAP_MS, junk

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero and symlinks are POSIX")

DEADLINE_S = 2.0
WAIT_MS = 60_000   # a hang guard for the test, not a timing


@pytest.fixture
def hanging_view_pool():
    """The viewer's decode pool, with a child hook that hangs on files named *hang-forever*."""
    pool = DecodePool(1, DEADLINE_S, child_setup="tests.robustness.decode_hooks:hang_on_marker")
    old = replace_shared_pool("view", pool)
    yield pool
    replace_shared_pool("view", old)
    pool.close()


def test_a_hanging_decode_is_stopped_the_problem_named_and_the_next_image_loads(
        qtbot, window, tmp_path, hanging_view_pool) -> None:
    from PySide6.QtWidgets import QApplication

    folder = tmp_path / "study"
    folder.mkdir()
    stuck = folder / f"a_{HANG_MARKER}.dcm"
    shutil.copyfile(hostile2.rle_valid(tmp_path), stuck)
    good = folder / "b_good.dcm"
    shutil.copyfile(hostile2.jp2_valid(tmp_path), good)
    probe = EventLoopProbe()
    probe.timer.setInterval(20)
    probe.start()
    with qtbot.waitSignal(window.images_opened, timeout=WAIT_MS):
        window.open_paths([folder])
    paths = window.image_paths()
    assert sorted(paths) == [stuck, good]
    window.show_index(paths.index(stuck))
    qtbot.waitUntil(lambda: stuck in {p.path for p in window.problems()}, timeout=WAIT_MS)
    text = {p.path: p.text for p in window.problems()}[stuck]
    assert text == f"{printable_name(stuck.name)}: {timeout_message(DEADLINE_S)}"
    assert "decoding took longer than 2 s and was stopped" in text and "\n" not in text
    assert hanging_view_pool.restarts >= 1   # the stuck child was killed and replaced

    with qtbot.waitSignal(window.image_changed, timeout=WAIT_MS) as shown:   # the app goes on
        window.show_index(paths.index(good))
    assert shown.args[0] is not None and shown.args[0].path == good and shown.args[0].shape == (96, 80)
    worst = probe.stop()
    assert QApplication.activeModalWidget() is None
    assert worst * 1000 < GUI_GAP_MS, f"the GUI thread stalled for {worst * 1000:.0f} ms"


# Files whose stat or header alone says they cannot be opened (decode-time ones are added on a visit).
HEADER_BAD = {
    "fifo": hostile2.fifo,
    "dev_zero_link": hostile2.dev_zero_link,
    "symlink_loop": hostile2.symlink_loop,
    "sparse_3_5_gb_dicom": hostile2.sparse_huge_dicom,
    "tiff_duplicate_tags": hostile2.tiff_duplicate_size_tags,
    "deflated_item_bomb": hostile2.deflated_item_bomb,
    "plain_item_bomb": hostile2.plain_item_bomb,
    "not_an_image": lambda f: junk(f, "notes.png"),
    "bidi_name": lambda f: junk(f, "chest\u202egnp.dcm"),
    "invalid_utf8_name": lambda f: junk(f, b"bad\xff\xfe.png"),
}
DECODE_BAD = {"rle_bomb": hostile2.rle_segment_bomb, "jp2_zero_length_box": hostile2.jp2_zero_length_box}


def test_opening_a_folder_lists_every_bad_file_in_problems_before_any_is_visited(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    bad: dict[str, Path] = {}
    for name, build in HEADER_BAD.items():
        try:
            bad[name] = build(folder)
        except (OSError, UnicodeError, NotImplementedError):   # e.g. no bytes names on this platform
            continue
    decode_bad = {name: build(folder) for name, build in DECODE_BAD.items()}
    good = folder / "zz_good.dcm"
    shutil.copyfile(hostile2.rle_valid(tmp_path), good)
    at_scan: list[dict[Path, str]] = []
    window.images_opened.connect(lambda _paths: at_scan.append({p.path: p.text for p in window.problems()}))
    with qtbot.waitSignal(window.images_opened, timeout=WAIT_MS):
        window.open_paths([folder])
    assert at_scan, "images_opened was not emitted"
    listed = at_scan[0]
    missing = [name for name, path in bad.items() if path not in listed]
    assert not missing, f"not in Problems right after the scan: {missing}"
    for name, path in bad.items():
        assert listed[path].startswith(f"{printable_name(path.name)}: "), (name, listed[path])
    assert good not in listed and not set(decode_bad.values()) & set(listed)   # those need a decode
    tree = window.study_dock.tree
    paths = window.image_paths()
    for path in bad.values():   # the row is marked too, with the reason as its tooltip
        assert tree.image_item(paths.index(path)).toolTip(0) == listed[path]

    # The first image shown is a good one, and visiting a decode-time bad file adds its problem.
    qtbot.waitUntil(lambda: window.current_image() is not None, timeout=WAIT_MS)
    assert window.current_image().path == good   # the only file that opens
    window.show_index(paths.index(decode_bad["rle_bomb"]))
    qtbot.waitUntil(lambda: decode_bad["rle_bomb"] in {p.path for p in window.problems()}, timeout=WAIT_MS)


def test_the_studies_list_escapes_bidi_and_undecodable_names(qtbot, window, tmp_path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    bidi = junk(folder, "chest\u202egnp.dcm")   # shown raw, it reads "chestmcd.png"
    made = [bidi]
    try:
        made.append(junk(folder, b"bad\xff\xfe.png"))
    except (OSError, UnicodeError):
        pass
    with qtbot.waitSignal(window.images_opened, timeout=WAIT_MS):
        window.open_paths([folder])
    tree = window.study_dock.tree
    paths = window.image_paths()
    labels = {path: tree.image_item(paths.index(path)).text(0) for path in made}
    assert labels[bidi] == "chest\\u202egnp.dcm"
    for path in made:
        assert labels[path] == printable_name(path.name) and labels[path].encode("utf-8")
        tip = tree.image_item(paths.index(path)).toolTip(0)   # the reason it cannot be opened
        assert printable_name(path.name) in tip and "\u202e" not in tip and tip.encode("utf-8")
