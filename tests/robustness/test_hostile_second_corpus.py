"""Issue #14: hostile files that hung the viewer or exhausted memory, one test per family.

Each call into the loader runs under `bounded` so that a regression fails the test instead of
hanging the suite; the file builders are in hostile2.py.
"""
from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cxrviewer import cli
from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.io import find_images, load_image, read_header
from cxrviewer.core.study import group_images

from . import hostile2

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero and symlinks are POSIX")


def bounded(call: Callable[[], Any], seconds: float = 20.0, release: Path | None = None) -> Any:
    """`call()` on a thread; fail (not hang) when it takes longer than `seconds`.

    `release` is a FIFO opened for writing after a timeout, so a reader blocked on it ends.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if release is not None:
            fd = os.open(release, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail(f"still running after {seconds:g} s (hang)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def load_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ImageLoadError) as info:
        bounded(lambda: load_image(path, **kwargs), release=path if path.is_fifo() else None)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path.name}: "), message
    return message


# ================================================================================ not regular files
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = hostile2.fifo(tmp_path)
    assert "named pipe" in load_error(pipe)
    with pytest.raises(ImageLoadError, match="named pipe"):
        bounded(lambda: read_header(pipe), release=pipe)


def test_folder_scan_with_a_fifo_finishes(tmp_path: Path) -> None:
    pipe = hostile2.fifo(tmp_path)
    hostile2.fifo(tmp_path, "1.2.3")            # no suffix: the scanner peeks for a preamble
    found = bounded(lambda: find_images([tmp_path]), release=pipe)
    tree = bounded(lambda: group_images(found), release=pipe)
    assert [i.path for i in tree.files] == [pipe]


def test_cli_render_of_a_fifo_is_one_error_line(tmp_path: Path, capsys, log_dir) -> None:
    pipe = hostile2.fifo(tmp_path)
    code = bounded(lambda: cli.main(["render", str(pipe), "-o", str(tmp_path / "o.png")]), release=pipe)
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("cxrviewer: error: x.png: this is a named pipe"), err


def test_dev_zero_behind_a_dicom_name_is_refused(tmp_path: Path) -> None:
    assert "this is a device, not an image file" in load_error(hostile2.dev_zero_link(tmp_path))


def test_symlink_loop_is_named(tmp_path: Path) -> None:
    link = hostile2.symlink_loop(tmp_path)
    assert "symbolic link loop" in load_error(link)
    assert find_images([tmp_path]) == [link]     # listed, so opening it reports the loop


# ================================================================================ size before reading
def test_huge_sparse_file_is_refused_from_its_size(tmp_path: Path, monkeypatch) -> None:
    path = hostile2.sparse_huge_dicom(tmp_path)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    message = load_error(path)
    assert "file too large to open safely" in message and "3.4 GB" in message


def test_large_dicom_is_refused_from_its_header_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    import cxrviewer.core.io as io_module

    path = hostile2.sparse_huge_dicom(tmp_path, size=40 * 2**20)
    monkeypatch.setattr(io_module, "read_file_bytes", lambda *a, **k: pytest.fail("read the whole file"))
    assert "42000 × 42000" in load_error(path)


# ================================================================================ JPEG 2000 wrapper
def test_jp2_box_of_length_zero_is_refused_not_looped_on(tmp_path: Path) -> None:
    message = load_error(hostile2.jp2_zero_length_box(tmp_path))
    assert "JPEG 2000 file wrapper is corrupt" in message


def test_jp2_box_with_an_impossible_length_is_refused(tmp_path: Path) -> None:
    assert "impossible length (3 bytes)" in load_error(hostile2.jp2_short_box(tmp_path))


def test_legal_jp2_wrapper_still_opens(tmp_path: Path) -> None:
    image = bounded(lambda: load_image(hostile2.jp2_valid(tmp_path)))
    assert image.pixels.shape == (96, 80)


def test_jp2_size_claim_after_the_first_4_kb_is_found(tmp_path: Path) -> None:
    message = load_error(hostile2.jp2_late_siz_bomb(tmp_path))
    assert "stream says it is 30000 × 30000 pixels" in message


# ================================================================================ size guards stepped around
def test_tiff_with_duplicate_size_tags_is_checked_at_its_largest(tmp_path: Path) -> None:
    message = load_error(hostile2.tiff_duplicate_size_tags(tmp_path))
    assert "image too large" in message and "24000 × 24000" in message


def test_rle_segment_that_expands_past_the_frame_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    from pydicom.pixels.decoders import rle

    monkeypatch.setattr(rle, "_rle_decode_segment", lambda src: pytest.fail("decoded the bomb"))
    message = load_error(hostile2.rle_segment_bomb(tmp_path))
    assert "RLE segment expands to more than twice the image size" in message


def test_rle_image_still_opens(tmp_path: Path) -> None:
    assert bounded(lambda: load_image(hostile2.rle_valid(tmp_path))).pixels.shape == (96, 80)


def test_deflated_file_of_millions_of_sequence_items_is_refused(tmp_path: Path) -> None:
    path = hostile2.deflated_item_bomb(tmp_path)
    assert path.stat().st_size < 200_000
    assert "more than 100,000 sequence items" in load_error(path)
    with pytest.raises(ImageLoadError, match="sequence items"):
        bounded(lambda: read_header(path))


def test_plain_file_of_millions_of_sequence_items_is_refused(tmp_path: Path) -> None:
    from .hostile import dicom, save

    ds = dicom()
    path = save(ds, tmp_path / "items.dcm")
    data = path.read_bytes()
    items = struct.pack("<HH", 0x0040, 0x0275) + b"SQ\0\0" + b"\xff" * 4
    items += b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * 200_000 + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    at = data.index(b"\x10\x00\x10\x00PN")          # before (0010,0010), keeping tag order
    path.write_bytes(data[:at] + items + data[at:])
    assert "sequence items" in load_error(path)


def test_header_scan_of_a_40_mb_plain_item_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:
    import cxrviewer.core.io as io_module

    path = hostile2.plain_item_bomb(tmp_path)
    assert path.stat().st_size > 40_000_000
    with pytest.raises(ImageLoadError, match="more than 100,000 sequence items"):
        bounded(lambda: read_header(path))          # the GUI's folder scan
    monkeypatch.setattr(io_module, "read_file_bytes", lambda *a, **k: pytest.fail("read the whole file"))
    assert "more than 100,000 sequence items" in load_error(path)   # the header-first size check


def test_an_item_bomb_header_is_refused_after_a_look_ahead_not_100000_parsed_items(tmp_path: Path, monkeypatch) -> None:
    """pydicom builds a Dataset per item: reaching MAX_ITEMS that way took 4 s of pure Python
    (20 s on a loaded machine, past the folder scan's per-file deadline)."""
    from cxrviewer.core.io import _guards

    path = hostile2.plain_item_bomb(tmp_path)
    counted: list[int] = []
    real = _guards.ItemCountingReader._look_ahead

    def spy(self) -> None:
        counted.append(self._items)
        real(self)

    monkeypatch.setattr(_guards.ItemCountingReader, "_look_ahead", spy)
    with pytest.raises(ImageLoadError, match="more than 100,000 sequence items"):
        bounded(lambda: read_header(path))
    assert len(counted) == 1 and counted[0] <= 2 * _guards.LOOK_AHEAD_AFTER_ITEMS


def test_header_scan_of_an_ordinary_file_with_sequences_still_works(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from .hostile import dicom, save

    ds = dicom()
    ds.ReferencedImageSequence = Sequence([Dataset() for _ in range(500)])
    path = save(ds, tmp_path / "sequences.dcm")
    assert len(bounded(lambda: read_header(path)).ReferencedImageSequence) == 500


# ================================================================================ names and JSON
def test_bidi_and_control_characters_in_a_name_are_escaped_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "chest\u202egnp.dcm"          # shows as "chestmcd.png" when printed raw
    path.write_bytes(b"not an image at all, just text " * 10)
    message = load_error_escaped(path)
    assert message.startswith("chest\\u202egnp.dcm: ") and "\u202e" not in message
    newline = tmp_path / "two\nlines.png"
    newline.write_bytes(b"x" * 64)
    assert "\n" not in load_error_escaped(newline)


def load_error_escaped(path: Path) -> str:
    with pytest.raises(ImageLoadError) as info:
        bounded(lambda: load_image(path))
    return str(info.value)


def test_json_lines_are_valid_utf8_for_undecodable_names(tmp_path: Path) -> None:
    import io
    import json

    from cxrviewer.commands.predict import write_lines
    from cxrviewer.core.model.batch import ScoredFile

    path = Path(os.fsdecode(tmp_path)) / os.fsdecode(b"bad\xff\xfe.png")
    stream = io.StringIO()
    failures = write_lines([ScoredFile(path, error=f"{path.name}: broken")], True, stream)
    assert failures == 1
    raw = stream.getvalue().encode("utf-8")           # strict: no lone surrogates left
    record = json.loads(raw.decode("utf-8"))
    assert record["path"].endswith("bad\\xff\\xfe.png")
    text = io.StringIO()
    write_lines([ScoredFile(path, error="broken")], False, text)
    text.getvalue().encode("utf-8")


# ================================================================================ quieter faults
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_noted(tmp_path: Path, orientation: int) -> None:
    import io

    import numpy as np
    from PIL import Image, ImageOps

    pixels = np.zeros((40, 60), np.uint8)
    pixels[:10, :20] = 255                            # a bright corner shows every turn and flip
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", exif=exif.tobytes())
    path = tmp_path / f"orientation_{orientation}.png"
    path.write_bytes(buffer.getvalue())
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img), dtype=np.float32)
    image = bounded(lambda: load_image(path))
    assert np.array_equal(image.pixels, expected)
    noted = [n for n in image.notes if "EXIF orientation" in n]
    assert bool(noted) == (orientation != 1), image.notes


def test_gui_folder_scan_keeps_a_symlink_loop_so_it_can_be_reported(tmp_path: Path, qapp) -> None:
    from cxrviewer.ui.workers.loader import scan_paths

    link = hostile2.symlink_loop(tmp_path)
    pipe = hostile2.fifo(tmp_path)
    entries, problems = bounded(lambda: scan_paths([tmp_path]), release=pipe)
    listed = {getattr(entry, "path", None) for entry in entries}
    assert link in listed and pipe in listed, entries
    found = dict(problems)   # and the scan already says why neither can be opened
    assert "symbolic link loop" in found[link] and "named pipe (FIFO)" in found[pipe], problems


def test_cli_output_and_screenshot_errors_escape_file_names(tmp_path: Path, capsys, log_dir) -> None:
    source = hostile2.rle_valid(tmp_path)
    code = cli.main(["render", str(source), "-o", str(tmp_path / "out\u202egnp.xyz")])
    err = capsys.readouterr().err
    assert code != 0 and "out\\u202egnp.xyz: cannot write .xyz files" in err and "\u202e" not in err, err
    code = cli.main(["screenshot", str(tmp_path / "gone\u202e.png"), "-o", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code != 0 and "gone\\u202e.png: file or folder not found" in err and "\u202e" not in err, err


# ================================================================================ quiet partial decodes
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_cut_progressive_jpeg_with_a_fake_end_marker_says_it_is_incomplete(tmp_path: Path, mode: str) -> None:
    path = hostile2.truncated_progressive_jpeg(tmp_path, mode=mode)
    image = bounded(lambda: load_image(path))
    assert any(note.startswith("incomplete JPEG file") for note in image.notes), image.notes


def test_whole_progressive_jpeg_has_no_incomplete_note(tmp_path: Path) -> None:
    path = tmp_path / "whole.jpg"
    path.write_bytes(hostile2.progressive_jpeg_bytes())
    image = bounded(lambda: load_image(path))
    assert not any("incomplete" in note for note in image.notes), image.notes


@pytest.mark.parametrize("kind", [b"zTXt", b"tEXt"])
def test_png_with_a_50_mb_text_chunk_opens_and_says_what_was_skipped(tmp_path: Path, kind: bytes) -> None:
    import numpy as np

    from .hostile import chest_pixels

    image = bounded(lambda: load_image(hostile2.png_with_text_chunk(tmp_path, kind)))
    assert np.array_equal(image.pixels, (chest_pixels() >> 4).astype(np.float32))
    assert any("50 MB of metadata" in note and kind.decode() in note for note in image.notes), image.notes
