"""Issue #14: a hard time limit on a decode already running (core/decode_pool.py).

Risky decodes run in spawned child processes; a child that hangs (a decoder hook that sleeps
for ever, installed only by `tests/robustness/decode_hooks.py`) is killed at the deadline and
replaced, the caller gets one line naming the file, and the next image decodes.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from cxrviewer.core.decode_pool import (
    DecodeCancelled,
    DecodePool,
    load_image_isolated,
    needs_isolation,
    thumbnail_isolated,
    timeout_message,
)
from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import thumbnail
from cxrviewer.core.io import load_image

from . import hostile2
from .decode_hooks import CRASH_MARKER, HANG_MARKER
from .hostile import chest_pixels, dicom, encode, save

HOOK = "tests.robustness.decode_hooks:hang_on_marker"
DEADLINE_S = 2.0
NEVER_S = 60.0   # a hang guard for the test itself, not a timing


@pytest.fixture(scope="module")
def pool():
    made = DecodePool(1, DEADLINE_S, child_setup=HOOK)
    yield made
    made.close()


def bounded(call, seconds: float = NEVER_S):
    """Run `call` on a thread; fail the test (instead of hanging it) when it does not return."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds:g} s"
    if "error" in box:
        raise box["error"]   # type: ignore[misc]
    return box.get("value")


def copy_as(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def test_a_child_decodes_exactly_what_load_image_gives(pool, tmp_path) -> None:
    for path in (hostile2.rle_valid(tmp_path), hostile2.jp2_valid(tmp_path)):
        inline = load_image(path)
        isolated = bounded(lambda p=path: pool.load(p))
        assert np.array_equal(isolated.pixels, inline.pixels) and not isolated.pixels.flags.writeable
        assert isolated.path == path and isolated.display_name == inline.display_name
        assert (isolated.default_window, isolated.presets, isolated.notes, isolated.sha256) == (
            inline.default_window, inline.presets, inline.notes, inline.sha256)


def test_a_hanging_decoder_is_stopped_at_the_deadline_and_the_next_image_loads(pool, tmp_path) -> None:
    good = hostile2.rle_valid(tmp_path)
    stuck = copy_as(good, tmp_path / f"{HANG_MARKER}.dcm")
    restarts = pool.restarts
    started = time.monotonic()
    with pytest.raises(ImageLoadError) as caught:
        bounded(lambda: pool.load(stuck))
    assert time.monotonic() - started < NEVER_S
    assert str(caught.value) == f"{HANG_MARKER}.dcm: {timeout_message(DEADLINE_S)}"
    assert str(caught.value) == f"{HANG_MARKER}.dcm: decoding took longer than 2 s and was stopped"
    assert pool.restarts == restarts + 1
    assert bounded(lambda: pool.load(good)).shape == (96, 80)   # the replacement child works


def test_a_crashing_decoder_is_one_line_and_the_child_is_replaced(pool, tmp_path) -> None:
    good = hostile2.rle_valid(tmp_path)
    crashing = copy_as(good, tmp_path / f"{CRASH_MARKER}.dcm")
    with pytest.raises(ImageLoadError, match=r"^crash-hard\.dcm: the decoder stopped unexpectedly"):
        bounded(lambda: pool.load(crashing))
    assert bounded(lambda: pool.load(good)).shape == (96, 80)


def test_a_file_error_in_the_child_keeps_the_child(pool, tmp_path) -> None:
    bomb = hostile2.jp2_zero_length_box(tmp_path)
    restarts = pool.restarts
    with pytest.raises(ImageLoadError) as caught:
        bounded(lambda: pool.load(bomb))
    with pytest.raises(ImageLoadError) as inline:
        load_image(bomb)
    assert str(caught.value) == str(inline.value)   # the same message as in-process
    assert pool.restarts == restarts


def test_a_cancelled_decode_stops_its_child(pool, tmp_path) -> None:
    stuck = copy_as(hostile2.rle_valid(tmp_path), tmp_path / f"{HANG_MARKER}-2.dcm")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    restarts = pool.restarts
    with pytest.raises(DecodeCancelled):
        bounded(lambda: pool.load(stuck, cancelled=cancel.is_set))
    assert pool.restarts == restarts + 1


def test_the_child_imports_neither_qt_nor_tensorflow(pool) -> None:
    modules = bounded(pool.ping)
    assert "cxrviewer.core.io" in modules and "pydicom" in modules
    assert not [m for m in modules if m.split(".")[0] in ("PySide6", "shiboken6", "tensorflow", "keras")]
    assert not [m for m in modules if m.startswith("cxrviewer.ui")]


def test_a_decode_that_allocates_too_much_is_refused_by_the_childs_memory_limit(tmp_path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("the address-space limit is measured from /proc (Linux)")
    side = 6000   # 36 MP of float32 gray alone is 144 MB, far over the 64 MB allowed here
    path = tmp_path / "big.png"
    path.write_bytes(encode(".png", np.zeros((side, side), np.uint8)))
    small = DecodePool(1, 30.0, memory_bytes=64 * 2**20)
    try:
        with pytest.raises(ImageLoadError, match=r"^big\.png: not enough memory to open this image$"):
            bounded(lambda: small.load(path))
    finally:
        small.close()


def test_thumbnails_of_risky_files_come_from_a_child(pool, tmp_path) -> None:
    path = hostile2.rle_valid(tmp_path)
    expected = thumbnail(load_image(path), 32)
    assert np.array_equal(bounded(lambda: thumbnail_isolated(path, 32, pool=pool)), expected)


def test_routing_sends_dicom_tiff_and_huge_files_to_a_child_and_keeps_small_png_jpeg_bmp(tmp_path) -> None:
    png = tmp_path / "small.png"
    png.write_bytes(encode(".png", (chest_pixels() >> 4).astype(np.uint8)))
    tiff = tmp_path / "small.tif"
    tiff.write_bytes(encode(".tif", (chest_pixels() >> 4).astype(np.uint8)))
    plain = dicom()
    plain.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    plain_path = save(plain, tmp_path / "plain.dcm")
    big_header = tmp_path / "big_header.png"   # a PNG header claiming 20000 × 20000
    big_header.write_bytes(hostile2_png_header(20000, 20000))
    assert not needs_isolation(png)
    assert needs_isolation(tiff) and needs_isolation(big_header)
    assert needs_isolation(plain_path)   # every DICOM: even plain ones can hold item bombs
    assert needs_isolation(hostile2.plain_item_bomb(tmp_path, items=10))
    assert needs_isolation(hostile2.rle_valid(tmp_path)) and needs_isolation(hostile2.jp2_valid(tmp_path))
    assert needs_isolation(hostile2.deflated_item_bomb(tmp_path, items=10))
    if hasattr(os, "mkfifo"):
        fifo = hostile2.fifo(tmp_path)
        assert not needs_isolation(fifo)   # refused by its file type, without opening it
        with pytest.raises(ImageLoadError, match="named pipe"):
            bounded(lambda: load_image_isolated(fifo))


def hostile2_png_header(rows: int, columns: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", columns, rows, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_load_image_isolated_gives_the_same_image_either_way(pool, tmp_path) -> None:
    png = tmp_path / "small.png"
    png.write_bytes(encode(".png", (chest_pixels() >> 4).astype(np.uint8)))
    rle = hostile2.rle_valid(tmp_path)
    for path in (png, rle):
        assert np.array_equal(bounded(lambda p=path: load_image_isolated(p, pool=pool)).pixels, load_image(path).pixels)


def test_a_folder_header_scan_in_a_child_groups_and_finds_problems(tmp_path) -> None:
    from cxrviewer.core.study import group_images

    pool = DecodePool(1)   # the default deadline: 100,000 items take pydicom seconds to refuse

    good = hostile2.rle_valid(tmp_path)
    bomb = hostile2.plain_item_bomb(tmp_path)
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"just text, not an image")
    files = [good, bomb, junk]
    try:
        tree, problems = bounded(lambda: pool.scan(files), seconds=120)
    finally:
        pool.close()
    assert tree == group_images(files)
    found = dict(problems)
    assert set(found) == {1, 2}, problems
    assert found[1].startswith("plain_items.dcm: ") and found[2].startswith("notes.png: ")


def test_a_header_that_hangs_the_scan_is_left_out_reported_and_the_scan_goes_on(pool, tmp_path) -> None:
    from cxrviewer.core.decode_pool import scan_headers
    from cxrviewer.core.study import group_images

    first = hostile2.rle_valid(tmp_path)
    stuck = copy_as(first, tmp_path / f"{HANG_MARKER}-scan.dcm")
    last = copy_as(first, tmp_path / "last.dcm")
    tree, problems, left_out = bounded(lambda: scan_headers([first, stuck, last], pool=pool))
    assert left_out == [stuck] and tree == group_images([first, last])
    assert problems == [(stuck, f"{HANG_MARKER}-scan.dcm: reading its header took longer than 2 s and was stopped")]
