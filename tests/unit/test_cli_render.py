"""`cxrviewer render` in-process: the PNG is exactly the viewer's default display; errors are one line."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxrviewer import cli
from cxrviewer.commands import _base
from cxrviewer.core.imaging import default_display
from cxrviewer.core.io import load_image
from tests.shared_data import requires_shared, shared_dir


def read_png(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.ndim == 2
    return image


def ramp_dicom(make_dicom, **tags) -> Path:
    pixels = np.tile(np.linspace(0, 4095, 50).round().astype(np.uint16), (30, 1))
    return make_dicom(pixels, bits_stored=12, **tags)


def test_render_writes_the_default_display(make_dicom, tmp_path, capsys):
    source = ramp_dicom(make_dicom, photometric="MONOCHROME1", WindowCenter=1500, WindowWidth=2000)
    out = tmp_path / "out.png"
    assert cli.main(["render", str(source), "-o", str(out)]) == 0
    np.testing.assert_array_equal(read_png(out), default_display(load_image(source)))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_render_size_scales_longest_side(make_dicom, tmp_path):
    source = ramp_dicom(make_dicom)
    out = tmp_path / "small.png"
    assert cli.main(["render", str(source), "-o", str(out), "--size", "25"]) == 0
    assert read_png(out).shape == (15, 25)
    big = tmp_path / "big.png"
    assert cli.main(["render", str(source), "-o", str(big), "--size", "100"]) == 0
    assert read_png(big).shape == (60, 100)


def test_render_frame(make_dicom, tmp_path):
    frames = np.stack([np.full((6, 8), v, np.uint16) for v in (0, 1000, 4000)])
    source = make_dicom(frames, bits_stored=12, WindowCenter=2000, WindowWidth=4000)
    out = tmp_path / "f.png"
    assert cli.main(["render", str(source), "-o", str(out), "--frame", "2"]) == 0
    np.testing.assert_array_equal(read_png(out), default_display(load_image(source, frame=2)))


def test_render_png_input_to_non_ascii_output(tmp_path):
    pixels = np.arange(200, dtype=np.uint8).reshape(10, 20)
    source = tmp_path / "in.png"
    source.write_bytes(cv2.imencode(".png", pixels)[1].tobytes())
    out = tmp_path / "résultat_胸部.png"
    assert cli.main(["render", str(source), "-o", str(out)]) == 0
    np.testing.assert_array_equal(read_png(out), pixels)


def assert_one_line_error(capsys, name: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cxrviewer: error: ")
    assert name in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"junk" * 100])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, log_dir, content):
    bad = tmp_path / "bad_ß.dcm"
    bad.write_bytes(content)
    out = tmp_path / "never.png"
    assert cli.main(["render", str(bad), "-o", str(out)]) == 2
    assert_one_line_error(capsys, "bad_ß.dcm")
    assert not out.exists()
    log_text = (log_dir / "cxrviewer.log").read_text(encoding="utf-8")
    assert "Traceback" in log_text and "ImageLoadError" in log_text


def test_missing_input(tmp_path, capsys):
    assert cli.main(["render", str(tmp_path / "absent.dcm"), "-o", str(tmp_path / "o.png")]) == 2
    line = assert_one_line_error(capsys, "absent.dcm")
    assert line.endswith("file not found")


def test_frame_out_of_range(make_dicom, tmp_path, capsys):
    source = ramp_dicom(make_dicom)
    assert cli.main(["render", str(source), "-o", str(tmp_path / "o.png"), "--frame", "3"]) == 2
    assert "out of range" in assert_one_line_error(capsys, source.name)


def test_unwritable_output(make_dicom, tmp_path, capsys):
    source = ramp_dicom(make_dicom)
    out = tmp_path / "no" / "such" / "dir.png"
    assert cli.main(["render", str(source), "-o", str(out)]) == 2
    assert "cannot write" in assert_one_line_error(capsys, "dir.png")


def test_usage_errors_exit_2(capsys):
    assert cli.main(["render"]) == 2
    assert cli.main(["render", "x.dcm", "-o", "y.png", "--size", "0"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_and_help_exit_0(capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["--help"]) == 0
    assert "render" in capsys.readouterr().out


def test_render_is_registered_and_room_for_more():
    assert "render" in cli.subcommand_names()
    with pytest.raises(ValueError):
        _base.subcommand("render", help="again", configure=lambda parser: None)(lambda args: 0)


@pytest.mark.parametrize("argv", [[], ["a.png", "folder"]])
def test_no_command_launches_gui_lazily(monkeypatch, argv):
    opened: list[list[str]] = []
    fake_app = types.ModuleType("cxrviewer.ui.shell.app")
    fake_app.run = lambda paths: opened.append(list(paths)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cxrviewer.ui.shell.app", fake_app)
    assert cli.main(argv) == 0
    assert opened == [argv]


def test_cli_import_does_not_pull_in_qt():
    import subprocess

    code = "import sys, cxrviewer.cli; sys.exit(1 if any(m.startswith('PySide6') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.shared
@requires_shared
def test_render_real_chest(tmp_path):
    folder = shared_dir()
    assert folder is not None
    source = folder / "dicom" / "cr_chest_mono1_j2k_lossy.dcm"
    out = tmp_path / "chest.png"
    assert cli.main(["render", str(source), "-o", str(out), "--size", "256"]) == 0
    shown = read_png(out)
    assert max(shown.shape) == 256
    expected = cv2.resize(default_display(load_image(source)), shown.shape[::-1], interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(shown, expected)


def test_setup_logging_rotating_file_in_override_dir(log_dir):
    import logging
    import logging.handlers

    from cxrviewer.core.logs import setup_logging

    path = setup_logging()
    assert path == log_dir / "cxrviewer.log"
    assert setup_logging() == path  # idempotent
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    ours = [h for h in handlers if Path(h.baseFilename) == path.absolute()]
    assert len(ours) == 1
    assert (ours[0].maxBytes, ours[0].backupCount) == (1_000_000, 3)
    logging.getLogger("cxrviewer.test").info("hello log")
    ours[0].flush()
    assert "hello log" in path.read_text(encoding="utf-8")


def _png_with_corrupt_deflate(path: Path) -> Path:
    """Valid chunk checksums around broken compressed data: only libpng itself notices."""
    import struct
    import zlib

    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = bytearray(cv2.imencode(".png", noise)[1].tobytes())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4:start])[0]
    for offset in range(10, 40):
        data[start + 4 + offset] ^= 0x55
    crc = zlib.crc32(bytes(data[start:start + 4 + length])) & 0xFFFFFFFF
    data[start + 4 + length:start + 8 + length] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_separate_process_error_is_one_line_despite_native_noise(tmp_path):
    """libpng prints on the process's stderr itself; the CLI moves that into the log."""
    import os
    import subprocess

    bad = _png_with_corrupt_deflate(tmp_path / "deflate.png")
    env = {**os.environ, "CXRVIEWER_LOG_DIR": str(tmp_path / "proc_logs")}
    result = subprocess.run(
        [sys.executable, "-m", "cxrviewer.cli", "render", str(bad), "-o", str(tmp_path / "o.png")],
        capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=120, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cxrviewer: error: deflate.png: truncated or corrupt PNG file (its image data cannot be decoded)"
    ]
    assert "libpng" in (tmp_path / "proc_logs" / "cxrviewer.log").read_text(encoding="utf-8")


def test_a_file_whose_decoder_hangs_is_stopped_and_named_in_one_line(make_dicom, tmp_path, capsys):
    from cxrviewer.core.decode_pool import DecodePool, replace_shared_pool
    from tests.robustness.decode_hooks import HANG_MARKER

    stuck = ramp_dicom(make_dicom).rename(tmp_path / f"{HANG_MARKER}.dcm")
    hooked = DecodePool(1, 2.0, child_setup="tests.robustness.decode_hooks:hang_on_marker")
    previous = replace_shared_pool("view", hooked)
    try:
        assert cli.main(["render", str(stuck), "-o", str(tmp_path / "out.png")]) == 2
    finally:
        replace_shared_pool("view", previous)
        hooked.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{HANG_MARKER}.dcm" in err[0] and "decoding took longer than 2 s" in err[0]
    assert not (tmp_path / "out.png").exists()
