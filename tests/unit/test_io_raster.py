"""Raster loading (PNG/JPEG/TIFF/BMP), content sniffing, folder expansion and bad inputs."""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import percentile_window
from cxrviewer.core.io import (
    PRESET_AUTO,
    PRESET_FULL,
    SUPPORTED_SUFFIXES,
    find_images,
    is_supported_path,
    load_image,
)
from cxrviewer.core.io import raster as raster_io
from cxrviewer.core.types import Window
from tests.shared_data import requires_shared, shared_dir


def write_cv2(path: Path, array: np.ndarray) -> Path:
    ok, encoded = cv2.imencode(path.suffix, array)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def write_pil(path: Path, image: Image.Image, fmt: str | None = None, **options: object) -> Path:
    image.save(path, format=fmt, **options)
    return path


def gradient(rows: int = 20, columns: int = 30, top: int = 255, dtype: type = np.uint8) -> np.ndarray:
    values = np.linspace(0, top, rows * columns).round().astype(dtype)
    return values.reshape(rows, columns)


# --------------------------------------------------------------------------- good files

def test_8bit_png_keeps_values_and_uses_full_range(tmp_path):
    pixels = gradient()
    path = write_cv2(tmp_path / "gray.png", pixels)
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.pixels.dtype == np.float32 and not image.pixels.flags.writeable
    assert image.default_window == Window(127.5, 255.0)
    assert {p.name for p in image.presets} == {PRESET_AUTO, PRESET_FULL}
    assert image.photometric == "MONOCHROME2" and not image.invert_for_display
    assert image.display_name == "gray.png" and image.frame_count == 1
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert image.notes == ()


def test_16bit_png_uses_percentile_window(tmp_path):
    pixels = gradient(top=4095, dtype=np.uint16)
    image = load_image(write_cv2(tmp_path / "deep.png", pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.default_window == percentile_window(pixels.astype(np.float32))


def test_16bit_tiff(tmp_path):
    pixels = gradient(top=60000, dtype=np.uint16)
    image = load_image(write_cv2(tmp_path / "deep.tif", pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_rgb_with_colour_becomes_luminance_with_note(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(10, 12, 3)).astype(np.uint8)
    path = write_pil(tmp_path / "colour.png", Image.fromarray(rgb, "RGB"))
    image = load_image(path)
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-3)
    assert "colour image shown in gray" in image.notes


def test_gray_stored_as_rgb_is_exact_and_silent(tmp_path):
    gray = gradient()
    path = write_pil(tmp_path / "rgbgray.png", Image.fromarray(np.dstack([gray] * 3), "RGB"))
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, gray.astype(np.float32))
    assert image.notes == ()


def test_opaque_rgba_ignores_alpha(tmp_path):
    gray = gradient()
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    image = load_image(write_pil(tmp_path / "opaque.png", Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(image.pixels, gray.astype(np.float32))
    assert image.notes == ()


def test_transparent_rgba_is_composited_over_black(tmp_path):
    gray = np.full((4, 4), 200, np.uint8)
    alpha = np.full((4, 4), 255, np.uint8)
    alpha[0, :] = 0
    image = load_image(write_pil(tmp_path / "alpha.png", Image.fromarray(np.dstack([gray] * 3 + [alpha]), "RGBA")))
    assert image.pixels[0].max() == 0 and image.pixels[1:].min() == 200
    assert any("transparent" in n for n in image.notes)


def test_gray_alpha_png(tmp_path):
    la = np.dstack([gradient(), np.full((20, 30), 255, np.uint8)])
    image = load_image(write_pil(tmp_path / "la.png", Image.fromarray(la, "LA")))
    np.testing.assert_array_equal(image.pixels, gradient().astype(np.float32))


def test_jpeg_and_bmp(tmp_path):
    pixels = gradient()
    jpeg = load_image(write_cv2(tmp_path / "g.jpg", pixels))
    assert np.abs(jpeg.pixels - pixels).max() <= 8
    bmp = load_image(write_cv2(tmp_path / "g.bmp", pixels))
    np.testing.assert_array_equal(bmp.pixels, pixels.astype(np.float32))


def test_float_tiff_with_nan_and_inf(tmp_path):
    values = np.array([[np.nan, 1.5, 3.0], [np.inf, -2.0, -np.inf]], np.float32)
    image = load_image(write_pil(tmp_path / "float.tif", Image.fromarray(values, "F")))
    assert np.isfinite(image.pixels).all()
    np.testing.assert_array_equal(image.pixels, [[-2.0, 1.5, 3.0], [-2.0, -2.0, -2.0]])
    assert any("not finite" in n for n in image.notes)


def test_all_nan_float_tiff_still_loads(tmp_path):
    values = np.full((3, 3), np.nan, np.float32)
    image = load_image(write_pil(tmp_path / "nan.tif", Image.fromarray(values, "F")))
    assert np.array_equal(image.pixels, np.zeros((3, 3), np.float32))


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1)])
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp"])
def test_tiny_images_load(tmp_path, shape, suffix):
    pixels = np.full(shape, 77, np.uint8)
    image = load_image(write_cv2(tmp_path / f"tiny{suffix}", pixels))
    assert image.shape == shape


def test_non_ascii_and_long_file_names(tmp_path):
    pixels = gradient()
    unicode_path = write_cv2(tmp_path / "Röntgen_胸部_ñ.png", pixels)
    assert load_image(unicode_path).display_name == "Röntgen_胸部_ñ.png"
    long_path = write_cv2(tmp_path / ("x" * 200 + ".png"), pixels)
    assert load_image(long_path).shape == pixels.shape


def test_pillow_fallback_when_opencv_cannot_decode(tmp_path, monkeypatch):
    pixels = gradient(top=60000, dtype=np.uint16)
    path = write_pil(tmp_path / "pil.tif", Image.fromarray(pixels), compression="tiff_lzw")
    monkeypatch.setattr(raster_io, "decode_with_opencv", lambda data: None)
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_pillow_fallback_handles_bilevel_and_palette(tmp_path, monkeypatch):
    monkeypatch.setattr(raster_io, "decode_with_opencv", lambda data: None)
    bits = np.array([[0, 1, 1], [1, 0, 0]], bool)
    bilevel = load_image(write_pil(tmp_path / "bits.tif", Image.fromarray(bits)))
    np.testing.assert_array_equal(bilevel.pixels, bits * 255.0)
    palette = Image.fromarray(gradient()).convert("P")
    assert load_image(write_pil(tmp_path / "pal.png", palette)).shape == (20, 30)


def test_frame_other_than_zero_is_out_of_range(tmp_path):
    path = write_cv2(tmp_path / "single.png", gradient())
    with pytest.raises(ImageLoadError, match=r"single\.png: frame 1 is out of range"):
        load_image(path, frame=1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.integers(1, 12),
    columns=st.integers(1, 12),
    deep=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_png_round_trip_property(tmp_path, rows, columns, deep, seed):
    dtype = np.uint16 if deep else np.uint8
    top = 65535 if deep else 255
    pixels = np.random.default_rng(seed).integers(0, top + 1, size=(rows, columns)).astype(dtype)
    image = load_image(write_cv2(tmp_path / f"p{rows}x{columns}{int(deep)}.png", pixels))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert np.isfinite([image.default_window.center, image.default_window.width]).all()
    assert image.default_window.width > 0


# --------------------------------------------------------------------------- size limit

def _png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_huge_png_header_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_claiming(60000, 60000) + b"\x00" * 64)

    def must_not_decode(data):
        raise AssertionError("decoded before checking the size")

    monkeypatch.setattr(raster_io, "decode_with_opencv", must_not_decode)
    with pytest.raises(ImageLoadError, match=r"bomb\.png: image too large .*60000 × 60000"):
        load_image(path)


def test_jpeg_header_size_is_read_without_decoding(tmp_path):
    data = write_cv2(tmp_path / "size.jpg", np.zeros((37, 53), np.uint8)).read_bytes()
    assert raster_io.jpeg_size(data) == (37, 53)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(tmp_path / "size.jpg", max_pixels=37 * 53 - 1)


def test_pixel_limit_from_environment(tmp_path, monkeypatch):
    path = write_cv2(tmp_path / "env.png", gradient())
    monkeypatch.setenv("CXRVIEWER_MAX_PIXELS", "100")
    with pytest.raises(ImageLoadError, match="CXRVIEWER_MAX_PIXELS"):
        load_image(path)
    assert load_image(path, max_pixels=1000).shape == (20, 30)


def test_tiff_and_bmp_sizes_come_from_headers(tmp_path):
    tif = write_cv2(tmp_path / "s.tif", np.zeros((11, 13), np.uint8)).read_bytes()
    bmp = write_cv2(tmp_path / "s.bmp", np.zeros((11, 13), np.uint8)).read_bytes()
    assert raster_io.header_size(tif, "TIFF") == (11, 13)
    assert raster_io.bmp_size(bmp) == (11, 13)


# --------------------------------------------------------------------------- bad inputs

def _expect_error(path: Path, fragment: str) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    assert fragment in message, message
    return message


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "absent.png", "file not found")


def test_folder_instead_of_file(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    _expect_error(folder, "folder")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    _expect_error(path, "empty file (0 bytes)")


@pytest.mark.parametrize("name", ["noise.png", "noise.dcm", "noise.jpg", "noise"])
def test_random_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_error(path, "not an image or DICOM file")


def test_text_file(tmp_path):
    path = tmp_path / "readme.png"
    path.write_text("this is not an image\n" * 20)
    _expect_error(path, "not an image or DICOM file")


def test_truncated_png(tmp_path):
    data = write_cv2(tmp_path / "full.png", np.random.default_rng(4).integers(0, 256, (64, 64), dtype=np.uint8)).read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "truncated PNG")


def test_png_with_bad_checksum(tmp_path):
    data = bytearray(write_cv2(tmp_path / "full.png", gradient()).read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    path = tmp_path / "crc.png"
    path.write_bytes(bytes(data))
    _expect_error(path, "corrupt PNG")


def test_truncated_jpeg(tmp_path):
    data = write_cv2(tmp_path / "full.jpg", np.random.default_rng(5).integers(0, 256, (64, 64), dtype=np.uint8)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "truncated JPEG")


def test_jpeg_header_only(tmp_path):
    path = tmp_path / "head.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    _expect_error(path, "JPEG")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the cut file
def test_truncated_tiff(tmp_path):
    data = write_cv2(tmp_path / "full.tif", np.random.default_rng(6).integers(0, 256, (64, 64), dtype=np.uint8)).read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(data[:200])
    _expect_error(path, "TIFF")


def test_long_name_with_bad_content(tmp_path):
    path = tmp_path / ("é" * 100 + ".png")  # 200 bytes in UTF-8
    path.write_bytes(b"garbage" * 10)
    _expect_error(path, "not an image or DICOM file")


def test_name_too_long_for_file_system(tmp_path):
    _expect_error(tmp_path / ("y" * 300 + ".png"), "too long")


def test_unexpected_errors_are_wrapped(tmp_path, monkeypatch):
    path = write_cv2(tmp_path / "boom.png", gradient())

    def explode(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(raster_io, "build_raster_image", explode)
    _expect_error(path, "unexpected error")


# --------------------------------------------------------------------------- real files

@pytest.mark.shared
@requires_shared
def test_real_training_jpegs_load():
    folder = shared_dir()
    assert folder is not None
    for label in ("NORMAL", "PNEUMONIA"):
        files = sorted((folder / "data" / "chest_xray" / "train" / label).glob("*.jpeg"))[:3]
        assert files, f"no JPEGs in {label}"
        for path in files:
            image = load_image(path)
            reference = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
            assert image.shape == reference.shape
            assert np.abs(image.pixels - reference).mean() < 2.0
            assert image.default_window == Window(127.5, 255.0)


@pytest.mark.shared
@requires_shared
def test_truncated_real_jpeg(tmp_path):
    folder = shared_dir()
    assert folder is not None
    source = sorted((folder / "data" / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[0]
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes()[:3000])
    _expect_error(path, "truncated JPEG")


# --------------------------------------------------------------------------- finding files

def test_supported_suffixes():
    assert {".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"} <= SUPPORTED_SUFFIXES
    assert is_supported_path("a/B.PNG") and is_supported_path("x.dcm")
    assert not is_supported_path("notes.txt")


def test_find_images_recurses_sorts_and_skips(tmp_path, make_dicom):
    root = tmp_path / "case"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for name in ("IM-10.png", "IM-2.png"):
        write_cv2(root / name, gradient())
    write_cv2(root / "sub" / "deeper" / "z.jpg", gradient())
    write_cv2(root / ".hidden" / "secret.png", gradient())
    write_cv2(root / "._IM-2.png", gradient())
    (root / "notes.txt").write_text("x")
    (root / "DICOMDIR").write_bytes(b"\x00" * 132)
    dicom = make_dicom(gradient(), name="tmp.dcm")
    (root / "sub" / "1.2.840.99").write_bytes(dicom.read_bytes())   # UID-named DICOM
    (root / "sub" / "README").write_text("no preamble here")

    found = find_images([root])
    names = [p.relative_to(root).as_posix() for p in found]
    assert names == ["IM-2.png", "IM-10.png", "sub/1.2.840.99", "sub/deeper/z.jpg"]


def test_find_images_keeps_explicit_files_and_drops_duplicates(tmp_path):
    image = write_cv2(tmp_path / "a.png", gradient())
    other = tmp_path / "odd.xyz"
    other.write_text("?")
    assert find_images([image, tmp_path, other, image]) == [image, other]


def test_png_size_reads_ihdr():
    assert raster_io.png_size(_png_header_claiming(5, 7)) == (7, 5)


def test_progressive_jpeg_scan_coverage():
    """OpenCV's and Pillow's progressive scripts are complete; a baseline JPEG is not progressive."""
    gray = gradient(64, 80)
    colour = np.dstack([gray, gray[::-1], gray[:, ::-1]])
    for pixels in (gray, colour):
        progressive = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
        assert raster_io.progressive_jpeg_coverage(progressive) == "complete"
        assert raster_io.progressive_jpeg_coverage(cv2.imencode(".jpg", pixels)[1].tobytes()) is None
    scans_cut = progressive[:progressive.index(b"\xff\xda", progressive.index(b"\xff\xda") + 2)] + b"\xff\xd9"
    assert raster_io.progressive_jpeg_coverage(scans_cut) == "partial"
