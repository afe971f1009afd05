"""DICOM loading: every branch of the pixel pipeline on synthetic files, then the real files."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import default_display, percentile_window
from cxrviewer.core.io import PRESET_AUTO, PRESET_FULL, PRESET_VOI_LUT, dicom_tag_rows, load_image, read_header
from cxrviewer.core.io import dicom as dicom_io
from cxrviewer.core.types import SpacingKind, Window
from tests.shared_data import requires_shared, shared_dir


def ramp(rows: int = 32, columns: int = 40, top: int = 4095, dtype: type = np.uint16) -> np.ndarray:
    """A horizontal ramp from 0 to `top` (distinct columns, so flips and windows show)."""
    row = np.linspace(0, top, columns).round().astype(dtype)
    return np.tile(row, (rows, 1))


def lut_item(descriptor: list[int] | None, data: list[int] | bytes | None, **extra: object) -> Dataset:
    item = Dataset()
    if descriptor is not None:
        item.add_new(0x00283002, "US", descriptor)
    if data is not None:
        item.add_new(0x00283006, "OW" if isinstance(data, bytes) else "US", data)
    for keyword, value in extra.items():
        setattr(item, keyword, value)
    return item


# --------------------------------------------------------------------------- basics

def test_monochrome2_with_window_is_stored_values_and_first_window(make_dicom):
    pixels = ramp()
    path = make_dicom(pixels, bits_stored=12, WindowCenter=2048, WindowWidth=4096, PixelSpacing=[0.2, 0.1])
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.pixels.dtype == np.float32 and not image.pixels.flags.writeable
    assert image.default_window == Window(2048.0, 4096.0)
    assert [p.name for p in image.presets][-2:] == [PRESET_AUTO, PRESET_FULL]
    assert image.photometric == "MONOCHROME2" and image.invert_for_display is False
    assert image.pixel_spacing == (0.2, 0.1) and image.spacing_kind is SpacingKind.PATIENT
    assert image.display_name == "image.dcm" and image.frame_count == 1
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert image.notes == ()


def test_metadata_is_readable_strings(make_dicom):
    path = make_dicom(ramp(), ViewPosition="PA", BodyPartExamined="CHEST", AccessionNumber="A1")
    meta = load_image(path).metadata
    assert meta["PatientName"] == "Test, Patient"
    assert meta["PatientID"] == "TEST001"
    assert meta["StudyDate"] == "2024-01-31"
    assert meta["ViewPosition"] == "PA" and meta["BodyPartExamined"] == "CHEST"
    assert meta["TransferSyntax"] == "Explicit VR Little Endian"
    assert meta["StudyInstanceUID"] == "1.2.826.0.1.3680043.8.498.1"
    assert meta["Format"] == "DICOM"
    assert all(isinstance(v, str) for v in meta.values())


def test_monochrome1_inverts_for_display_only(make_dicom):
    pixels = ramp()
    image = load_image(make_dicom(pixels, photometric="MONOCHROME1", bits_stored=12,
                                  WindowCenter=2048, WindowWidth=4096))
    assert image.invert_for_display is True
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))  # values never flipped
    shown = default_display(image)
    assert shown[0, 0] == 255 and shown[0, -1] == 0  # low stored value = white


def test_presentation_lut_inverse_on_monochrome1_inverts_once(make_dicom):
    pixels = ramp()
    plain = load_image(make_dicom(pixels, name="a.dcm", photometric="MONOCHROME1", bits_stored=12))
    inverse = load_image(make_dicom(pixels, name="b.dcm", photometric="MONOCHROME1", bits_stored=12,
                                    PresentationLUTShape="INVERSE"))
    assert inverse.invert_for_display is True
    np.testing.assert_array_equal(default_display(inverse), default_display(plain))


def test_presentation_lut_inverse_on_monochrome2_inverts(make_dicom):
    image = load_image(make_dicom(ramp(), bits_stored=12, PresentationLUTShape="INVERSE"))
    assert image.invert_for_display is True
    shown = default_display(image)
    assert shown[0, 0] > shown[0, -1]


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1)])
def test_tiny_dicom_images_load(make_dicom, shape):
    image = load_image(make_dicom(np.full(shape, 100, np.uint16), bits_stored=12))
    assert image.shape == shape
    assert default_display(image).shape == shape


def test_frame_accepts_numpy_integers_and_rejects_other_types(make_dicom):
    path = make_dicom(np.zeros((2, 4, 4), np.uint16))
    assert load_image(path, frame=np.int64(1)).frame_index == 1
    with pytest.raises(ImageLoadError, match="whole number"):
        load_image(path, frame=1.5)  # type: ignore[arg-type]


def test_signed_pixels(make_dicom):
    pixels = (ramp(top=2000).astype(np.int16) - 1000).astype(np.int16)
    image = load_image(make_dicom(pixels, bits_stored=12))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


# --------------------------------------------------------------------------- Modality LUT

def test_rescale_slope_intercept(make_dicom):
    pixels = ramp()
    image = load_image(make_dicom(pixels, bits_stored=12, RescaleSlope=2, RescaleIntercept=-1024,
                                  WindowCenter=40, WindowWidth=400))
    np.testing.assert_allclose(image.pixels, pixels * 2.0 - 1024.0)
    assert image.default_window == Window(40.0, 400.0)  # in rescaled units


def test_modality_lut_sequence_is_applied(make_dicom):
    pixels = ramp(top=255)
    table = [3 * v + 7 for v in range(256)]

    def add_lut(ds):
        ds.ModalityLUTSequence = Sequence([lut_item([256, 0, 16], table, ModalityLUTType="US")])

    image = load_image(make_dicom(pixels, bits_stored=8, customize=add_lut))
    np.testing.assert_array_equal(image.pixels, pixels * 3.0 + 7.0)
    assert image.notes == ()


def test_malformed_modality_lut_sequence_falls_back_to_stored_values(make_dicom):
    pixels = ramp()

    def add_broken_lut(ds):
        ds.ModalityLUTSequence = Sequence([lut_item(None, [1, 2, 3], ModalityLUTType="HU")])

    image = load_image(make_dicom(pixels, bits_stored=12, customize=add_broken_lut))
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert any(n.startswith("Modality LUT sequence is malformed") and "stored values" in n for n in image.notes)


# --------------------------------------------------------------------------- VOI

def test_voi_lut_sequence_output_becomes_pixels(make_dicom):
    pixels = ramp()
    table = [(4095 - v) // 16 for v in range(4096)]  # an inverting LUT to 0..255

    def add_voi(ds):
        ds.VOILUTSequence = Sequence([lut_item([4096, 0, 8], table)])

    image = load_image(make_dicom(pixels, bits_stored=12, customize=add_voi,
                                  WindowCenter=100, WindowWidth=10))
    np.testing.assert_array_equal(image.pixels, np.asarray(table, np.float32)[pixels])
    assert image.default_window == Window(127.5, 255.0)  # the LUT's output range 0..255
    assert image.presets[0].name == PRESET_VOI_LUT


def test_voi_lut_sequence_with_first_mapped_offset_and_ow_data(make_dicom):
    pixels = ramp(top=3000)
    table = np.arange(1000, dtype="<u2") * 2

    def add_voi(ds):
        ds.VOILUTSequence = Sequence([lut_item([1000, 1000, 16], table.tobytes())])

    image = load_image(make_dicom(pixels, bits_stored=12, customize=add_voi))
    expected = table[np.clip(pixels.astype(np.int64) - 1000, 0, 999)].astype(np.float32)
    np.testing.assert_array_equal(image.pixels, expected)


def test_malformed_voi_lut_sequence_uses_windows(make_dicom):
    def add_voi(ds):
        ds.VOILUTSequence = Sequence([lut_item(None, None, LUTExplanation="broken")])

    image = load_image(make_dicom(ramp(), bits_stored=12, customize=add_voi, WindowCenter=1000, WindowWidth=2000))
    assert image.default_window == Window(1000.0, 2000.0)
    assert any(n.startswith("VOI LUT sequence is malformed") for n in image.notes)


def test_multiple_windows_become_named_presets(make_dicom):
    image = load_image(make_dicom(
        ramp(), bits_stored=12,
        WindowCenter=[1000, 3000], WindowWidth=[500, 2000],
        WindowCenterWidthExplanation=["LUNG", "BONE"],
    ))
    names = [p.name for p in image.presets]
    assert names == ["LUNG", "BONE", PRESET_AUTO, PRESET_FULL]
    assert image.default_window == Window(1000.0, 500.0)
    assert image.presets[1].window == Window(3000.0, 2000.0)


def test_window_without_explanation_gets_a_descriptive_name(make_dicom):
    image = load_image(make_dicom(ramp(), bits_stored=12, WindowCenter=1000, WindowWidth=500))
    assert image.presets[0].name == "Window 1 (1000/500)"


def test_missing_window_uses_percentile_auto_window(make_dicom):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(48, 48)).astype(np.uint16)
    image = load_image(make_dicom(pixels, bits_stored=12))
    assert image.default_window == percentile_window(pixels.astype(np.float32))
    assert [p.name for p in image.presets] == [PRESET_AUTO, PRESET_FULL]


def test_flat_window_falls_back_to_auto_with_note(make_dicom):
    image = load_image(make_dicom(ramp(), bits_stored=12, WindowCenter=100000, WindowWidth=10))
    assert image.default_window == percentile_window(image.pixels)
    assert image.presets[0].window == Window(100000.0, 10.0)  # still offered
    assert any("almost uniform" in n for n in image.notes)


def test_window_leaves_flat_detects_narrow_band():
    pixels = ramp().astype(np.float32)
    assert dicom_io.window_leaves_flat(pixels, Window(2048, 10_000_000))
    assert not dicom_io.window_leaves_flat(pixels, Window(2048, 4096))


# --------------------------------------------------------------------------- spacing

@pytest.mark.parametrize(
    ("tags", "expected", "kind"),
    [
        ({"PixelSpacing": [0.15, 0.15], "ImagerPixelSpacing": [0.2, 0.2]}, (0.15, 0.15), SpacingKind.PATIENT),
        ({"ImagerPixelSpacing": [0.2, 0.25]}, (0.2, 0.25), SpacingKind.DETECTOR),
        ({"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.2, 0.2]}, (0.2, 0.2), SpacingKind.DETECTOR),
        ({"PixelSpacing": [0, 0]}, None, SpacingKind.NONE),
        ({}, None, SpacingKind.NONE),
    ],
)
def test_pixel_spacing_source(make_dicom, tags, expected, kind):
    image = load_image(make_dicom(ramp(), **tags))
    assert image.pixel_spacing == expected
    assert image.spacing_kind is kind


# --------------------------------------------------------------------------- file structure

def test_file_without_preamble(make_dicom, tmp_path):
    pixels = ramp()
    source = make_dicom(pixels)
    target = tmp_path / "no_preamble.dcm"
    target.write_bytes(source.read_bytes()[132:])
    image = load_image(target)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def _implicit_dataset_bytes(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return fp.getvalue()


def test_meta_header_without_transfer_syntax(tmp_path, build_dicom_dataset):
    pixels = ramp()
    ds = build_dicom_dataset(pixels, bits_stored=12)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=False)
    path = tmp_path / "no_ts.dcm"
    path.write_bytes(fp.getvalue() + _implicit_dataset_bytes(ds))

    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert any("does not state its transfer syntax" in n for n in image.notes)


def test_bare_dataset_without_preamble_or_meta(tmp_path, build_dicom_dataset):
    pixels = ramp()
    path = tmp_path / "bare"
    path.write_bytes(_implicit_dataset_bytes(build_dicom_dataset(pixels, bits_stored=12)))
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.metadata["TransferSyntax"] == "Implicit VR Little Endian"


def test_multi_frame_selects_frame(make_dicom):
    frames = np.stack([ramp(top=3000) + 100 * i for i in range(3)]).astype(np.uint16)
    path = make_dicom(frames, name="multi.dcm", bits_stored=12)
    first = load_image(path)
    second = load_image(path, frame=1)
    np.testing.assert_array_equal(first.pixels, frames[0].astype(np.float32))
    np.testing.assert_array_equal(second.pixels, frames[1].astype(np.float32))
    assert (second.frame_index, second.frame_count) == (1, 3)
    assert first.display_name == "multi.dcm [1/3]" and second.display_name == "multi.dcm [2/3]"
    for bad in (3, -1):
        with pytest.raises(ImageLoadError, match="out of range"):
            load_image(path, frame=bad)


# --------------------------------------------------------------------------- colour

def test_rgb_is_shown_in_gray_with_note(make_dicom):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(16, 20, 3)).astype(np.uint8)
    image = load_image(make_dicom(rgb, photometric="RGB"))
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-3)
    assert "colour image shown in gray" in image.notes
    assert image.photometric == "MONOCHROME2"


def test_ybr_full_is_converted_before_gray(make_dicom):
    from pydicom.pixels import convert_color_space

    rng = np.random.default_rng(2)
    rgb = rng.integers(40, 200, size=(16, 20, 3)).astype(np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    image = load_image(make_dicom(ybr, photometric="YBR_FULL"))
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(image.pixels, expected, atol=2.0)


# --------------------------------------------------------------------------- compressed

@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_lossless_compressed_round_trip(make_dicom, syntax):
    pixels = ramp(rows=64, columns=64)
    path = make_dicom(pixels, bits_stored=12, compress=syntax)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    image = load_image(path)
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))
    assert image.metadata["TransferSyntax"] == syntax.name


# --------------------------------------------------------------------------- bad files

def test_dicom_without_pixel_data(make_dicom):
    path = make_dicom(ramp(), name="report.dcm", customize=lambda ds: delattr(ds, "PixelData"))
    with pytest.raises(ImageLoadError, match="no Pixel Data") as info:
        load_image(path)
    assert str(info.value).startswith("report.dcm: ")


def test_dicom_without_image_at_all(tmp_path, build_dicom_dataset):
    ds = build_dicom_dataset(ramp())
    for keyword in ("PixelData", "Rows", "Columns"):
        delattr(ds, keyword)
    path = tmp_path / "sr.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageLoadError, match=r"sr\.dcm: this DICOM file contains no image \(no Pixel Data\)"):
        load_image(path)


def test_corrupt_jpeg2000_stream(make_dicom):
    def corrupt(ds):
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])

    path = make_dicom(ramp(), name="corrupt_j2k.dcm", bits_stored=12, compress=JPEG2000Lossless, customize=corrupt)
    with pytest.raises(ImageLoadError, match=r"corrupt_j2k\.dcm: .*JPEG 2000.*corrupt"):
        load_image(path)


@pytest.mark.parametrize(
    ("uid", "named"),
    [
        ("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile"),
        ("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2"),
    ],
)
def test_unsupported_transfer_syntax_is_named(make_dicom, uid, named):
    def claim(ds):
        ds.file_meta.TransferSyntaxUID = uid
        ds.PixelData = encapsulate([b"\x00junk" * 20])

    path = make_dicom(ramp(), name="odd.dcm", customize=claim)
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith("odd.dcm: unsupported transfer syntax")
    assert named in message and uid in message


def test_jpeg_xl_transfer_syntax_is_named(tmp_path, build_dicom_dataset):
    ds = build_dicom_dataset(ramp())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.112"  # unknown to pydicom 3.0
    ds.PixelData = encapsulate([b"\xff\x0ajunk" * 20])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta)
    write_dataset(fp, ds)
    path = tmp_path / "jxl.dcm"
    path.write_bytes(fp.getvalue())
    with pytest.raises(ImageLoadError, match=r"jxl\.dcm: unsupported transfer syntax JPEG XL .*decoder"):
        load_image(path)


def test_absurd_dimensions_are_refused_before_decoding(make_dicom, monkeypatch):
    def huge(ds):
        ds.Rows = 60000
        ds.Columns = 60000

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded before checking the size")

    path = make_dicom(ramp(), name="huge.dcm", customize=huge)
    monkeypatch.setattr(dicom_io.read, "decode_frame", must_not_decode)
    with pytest.raises(ImageLoadError, match=r"huge\.dcm: image too large .*60000 × 60000"):
        load_image(path)


def test_pixel_limit_counts_frames_and_can_be_overridden(make_dicom, monkeypatch):
    frames = np.zeros((4, 20, 25), np.uint16)
    path = make_dicom(frames)
    with pytest.raises(ImageLoadError, match="4 frames"):
        load_image(path, max_pixels=1999)
    assert load_image(path, max_pixels=2000).frame_count == 4
    monkeypatch.setenv("CXRVIEWER_MAX_PIXELS", "100")
    with pytest.raises(ImageLoadError, match="CXRVIEWER_MAX_PIXELS"):
        load_image(path)
    assert load_image(path, max_pixels=10_000).shape == (20, 25)


def test_truncated_native_dicom(make_dicom, tmp_path):
    data = make_dicom(ramp(rows=64, columns=64)).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ImageLoadError, match=r"cut\.dcm: truncated"):
        load_image(path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the damage we made
def test_truncated_compressed_dicom(make_dicom, tmp_path):
    data = make_dicom(ramp(rows=64, columns=64), bits_stored=12, compress=JPEG2000Lossless).read_bytes()
    path = tmp_path / "cut_j2k.dcm"
    path.write_bytes(data[: len(data) - 40])  # inside the last fragment
    with pytest.raises(ImageLoadError, match=r"cut_j2k\.dcm: truncated"):
        load_image(path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the damage we made
def test_unparsable_header_values_are_ignored_not_fatal(make_dicom, tmp_path):
    data = make_dicom(ramp(), NumberOfFrames=1, WindowCenter=2048, WindowWidth=4096).read_bytes()
    frames_tag, center_tag = b"\x28\x00\x08\x00IS\x02\x00", b"\x28\x00\x50\x10DS\x06\x00"
    assert frames_tag + b"1 " in data and center_tag + b"2048.0" in data
    data = data.replace(frames_tag + b"1 ", frames_tag + b"ab").replace(center_tag + b"2048.0", center_tag + b"wx.yz!")
    path = tmp_path / "weird.dcm"
    path.write_bytes(data)
    image = load_image(path)
    assert image.frame_count == 1
    assert [p.name for p in image.presets] == [PRESET_AUTO, PRESET_FULL]
    assert any("Number of Frames" in note for note in image.notes)


# --------------------------------------------------------------------------- headers and tags

def test_read_header_skips_pixels(make_dicom):
    ds = read_header(make_dicom(ramp()))
    assert "PixelData" not in ds and ds.PatientID == "TEST001"


def test_dicom_tag_rows(make_dicom):
    def extras(ds):
        ds.ImageComments = "x" * 500
        inner = Dataset()
        inner.CodeValue = "T-D3000"
        inner.CodeMeaning = "Chest"
        ds.AnatomicRegionSequence = Sequence([inner])

    rows = dicom_tag_rows(make_dicom(ramp(), customize=extras))
    by_tag = {tag: (name, vr, value) for tag, name, vr, value in rows}
    assert by_tag["(0010,0010)"][0] == "Patient's Name"
    assert by_tag["(0002,0010)"][2].startswith("1.2.840.10008.1.2.1")
    assert by_tag["(7FE0,0010)"][2] == f"<{32 * 40 * 2} bytes>"
    assert len(by_tag["(0020,4000)"][2]) <= 200
    assert by_tag["(0008,2218)"][1:] == ("SQ", "<1 item>")
    assert by_tag[">(0008,0104)"][0].strip() == "Code Meaning"
    assert by_tag[">(0008,0104)"][2] == "Chest"
    assert all(len(row) == 4 and all(isinstance(c, str) for c in row) for row in rows)


def test_dicom_tag_rows_on_non_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ImageLoadError, match="notes.txt"):
        dicom_tag_rows(path)


# =========================================================================== real files

def real(name: str) -> Path:
    folder = shared_dir()
    assert folder is not None
    return folder / "dicom" / name


REAL_FILES = [
    "cr_chest_mono1_j2k_lossy.dcm",
    "cr_chest_mono2_jpeg_baseline.dcm",
    "cr_extremity_mono1_j2k_lossless.dcm",
    "ot_16bit_voi_lut_modality_lut_jpeg_lossless.dcm",
    "us_rgb_two_frames.dcm",
]


def reference_display(path: Path, window: Window | None, invert: bool) -> np.ndarray:
    """Decode with pydicom directly and window by hand: an independent check of the loader."""
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    if window is None:
        low, high = np.percentile(stored, [0.5, 99.5])
    else:
        low, high = window.center - window.width / 2, window.center + window.width / 2
    shown = np.clip((stored - low) / (high - low) * 255.0, 0, 255).round()
    return (255 - shown if invert else shown).astype(np.int16)


def lungs_darker_than_mediastinum(shown: np.ndarray) -> bool:
    h, w = shown.shape
    region = lambda r0, r1, c0, c1: float(shown[int(r0 * h):int(r1 * h), int(c0 * w):int(c1 * w)].mean())  # noqa: E731
    lungs = (region(0.3, 0.55, 0.2, 0.35) + region(0.3, 0.55, 0.65, 0.8)) / 2
    mediastinum = region(0.3, 0.6, 0.45, 0.55)
    below_diaphragm = region(0.85, 0.95, 0.3, 0.7)
    return lungs + 40 < mediastinum and lungs < below_diaphragm


@pytest.mark.parametrize("name", REAL_FILES)
@pytest.mark.shared
@requires_shared
def test_every_real_file_loads(name):
    image = load_image(real(name))
    assert image.pixels.ndim == 2 and image.pixels.size > 0
    assert np.isfinite(image.pixels).all()
    shown = default_display(image)
    assert shown.std() > 10  # not flat
    assert dicom_tag_rows(real(name))


@pytest.mark.shared
@requires_shared
def test_real_monochrome1_chest_matches_hand_windowed_reference():
    path = real("cr_chest_mono1_j2k_lossy.dcm")
    image = load_image(path)
    assert image.photometric == "MONOCHROME1" and image.invert_for_display
    assert image.default_window == Window(15000.0, 30000.0)
    shown = default_display(image)
    expected = reference_display(path, Window(15000.0, 30000.0), invert=True)
    assert np.abs(shown.astype(np.int16) - expected).max() <= 1
    assert lungs_darker_than_mediastinum(shown)


@pytest.mark.shared
@requires_shared
def test_real_monochrome2_chest_matches_reference_auto_window():
    path = real("cr_chest_mono2_jpeg_baseline.dcm")
    image = load_image(path)
    assert not image.invert_for_display
    assert image.spacing_kind is SpacingKind.PATIENT
    shown = default_display(image)
    expected = reference_display(path, None, invert=False)
    assert np.abs(shown.astype(np.int16) - expected).max() <= 1
    assert lungs_darker_than_mediastinum(shown)


@pytest.mark.shared
@requires_shared
def test_inverting_a_chest_breaks_the_polarity_heuristic():
    """The heuristic really tells polarity apart (guards against a vacuous check)."""
    shown = default_display(load_image(real("cr_chest_mono1_j2k_lossy.dcm")))
    assert not lungs_darker_than_mediastinum(255 - shown)


@pytest.mark.shared
@requires_shared
def test_real_malformed_modality_lut_loads_with_note():
    image = load_image(real("ot_16bit_voi_lut_modality_lut_jpeg_lossless.dcm"))
    stored = pydicom.dcmread(real("ot_16bit_voi_lut_modality_lut_jpeg_lossless.dcm")).pixel_array
    np.testing.assert_array_equal(image.pixels, stored.astype(np.float32))
    assert any(n.startswith("Modality LUT sequence is malformed") and n.endswith("using stored values")
               for n in image.notes)


@pytest.mark.shared
@requires_shared
def test_real_ultrasound_palette_two_frames():
    path = real("us_rgb_two_frames.dcm")
    frames = [load_image(path, frame=i) for i in range(2)]
    assert [f.display_name for f in frames] == ["us_rgb_two_frames.dcm [1/2]", "us_rgb_two_frames.dcm [2/2]"]
    assert all(f.frame_count == 2 and "colour image shown in gray" in f.notes for f in frames)
    assert not np.array_equal(frames[0].pixels, frames[1].pixels)
    with pytest.raises(ImageLoadError, match="out of range"):
        load_image(path, frame=2)


@pytest.mark.shared
@requires_shared
@pytest.mark.parametrize("name", ["cr_chest_mono2_jpeg_baseline.dcm", "us_rgb_two_frames.dcm"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_truncated_real_dicom(tmp_path, name):
    data = real(name).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match=rf"cut_{name}: truncated"):
        load_image(path)


def test_ybr_full_with_one_sample_per_pixel_is_shown_gray_with_note(make_dicom):
    """pydicom's YBR conversion failed here with numpy's 'operands could not be broadcast'."""
    gray = np.random.default_rng(3).integers(0, 256, size=(16, 20)).astype(np.uint8)
    image = load_image(make_dicom(gray, photometric="MONOCHROME2", PhotometricInterpretation="YBR_FULL"))
    np.testing.assert_array_equal(image.pixels, gray.astype(np.float32))
    assert any("calls this a colour image (YBR_FULL)" in note for note in image.notes), image.notes


def test_16_bit_ybr_full_is_refused_in_words(make_dicom):
    rgb = np.random.default_rng(4).integers(0, 4000, size=(16, 20, 3)).astype(np.uint16)
    path = make_dicom(rgb, photometric="RGB", bits_stored=16, PhotometricInterpretation="YBR_FULL")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert "YBR_FULL colour with 16-bit samples cannot be converted to gray" in message
    assert "3 samples per pixel of 16 bits, 16 × 20 pixels" in message
    assert "broadcast" not in message and "ndarray" not in message


def test_numpy_wording_in_a_decode_failure_is_replaced_by_the_header_layout():
    from cxrviewer.core.io.dicom import decode_failure_message

    exc = ValueError("operands could not be broadcast together with shapes (32,40) (3,) (32,40)")
    message = decode_failure_message("1.2.840.10008.1.2.1", exc, "photometric interpretation YBR_FULL, ...")
    assert message.startswith("the pixel data does not match its header (photometric interpretation YBR_FULL")
    assert "broadcast" not in message


# ------------------------------------------------------------------ pydicom's warnings go to the log

def _cut_j2k(make_dicom, tmp_path: Path) -> Path:
    """A JPEG 2000 DICOM cut inside its last fragment: pydicom warns "End of file reached before delimiter"."""
    data = make_dicom(ramp(rows=64, columns=64), bits_stored=12, compress=JPEG2000Lossless).read_bytes()
    path = tmp_path / "cut_warns.dcm"
    path.write_bytes(data[: len(data) - 40])
    return path


def test_pydicoms_warning_on_a_truncated_file_is_one_log_line_naming_it_not_stderr(make_dicom, tmp_path):
    """A process that set up logging but not warnings (as the decode children were): the walk saw
    pydicom's UserWarning printed on stderr, twice, without the file's name."""
    import subprocess
    import sys

    path, log_file = _cut_j2k(make_dicom, tmp_path), tmp_path / "run.log"
    script = (
        "import logging, sys\n"
        f"logging.basicConfig(filename={str(log_file)!r}, level=logging.INFO)\n"
        "from cxrviewer.core.errors import ImageLoadError\n"
        "from cxrviewer.core.io import load_image, read_header\n"
        f"read_header({str(path)!r})\n"
        "for _ in range(2):\n"
        "    try:\n"
        f"        load_image({str(path)!r})\n"
        "    except ImageLoadError as exc:\n"
        "        print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("cut_warns.dcm: truncated") == 2                # the user's message is unchanged
    assert "End of file reached" not in run.stderr and "UserWarning" not in run.stderr
    lines = [line for line in log_file.read_text().splitlines() if "End of file reached before delimiter" in line]
    assert len(lines) == 1 and str(path) in lines[0] and "WARNING" in lines[0]
    assert "<no filename>" not in lines[0]


def test_a_decode_childs_pydicom_warning_goes_to_the_callers_log(make_dicom, tmp_path, log_dir, capfd):
    from cxrviewer.core.decode_pool import DecodePool

    path = _cut_j2k(make_dicom, tmp_path)
    pool = DecodePool(1)            # spawned now: its stderr is the one capfd watches
    try:
        with pytest.raises(ImageLoadError, match=r"cut_warns\.dcm: truncated"):
            pool.load(path)
        with pytest.raises(ImageLoadError, match=r"cut_warns\.dcm: truncated"):
            pool.thumbnail(path, 64)
    finally:
        pool.close()
    assert "End of file reached" not in capfd.readouterr().err
    log_text = (log_dir / "cxrviewer.log").read_text(encoding="utf-8")
    lines = [line for line in log_text.splitlines() if "End of file reached before delimiter" in line]
    assert len(lines) == 1 and str(path) in lines[0]         # the same child read it twice: reported once


def test_pydicom_warnings_inside_a_read_are_collected_per_file_and_the_filter_comes_back(caplog, tmp_path):
    import logging
    import warnings

    from cxrviewer.core.io.dicom.pydicom_log import file_warnings

    def warn_and_log(message: str) -> None:      # pydicom.misc.warn_and_log, as called from pydicom.filereader
        logging.getLogger("pydicom").warning(message)
        warnings.warn_explicit(message, UserWarning, "filereader.py", 487, module="pydicom.filereader")

    target = tmp_path / "one.dcm"
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()                     # as if another block took the filter away
        with caplog.at_level(logging.INFO), file_warnings(target):
            warn_and_log("Expected explicit VR, but found implicit VR in file <no filename>")
            with file_warnings(target):              # nested: the same line
                warn_and_log("End of file reached before delimiter (FFFE,E0DD) found in file <no filename>")
    assert shown == []                                                   # nothing for stderr
    named = [r.getMessage() for r in caplog.records if str(target) in r.getMessage()]
    assert named == [f"{target}: pydicom read past damage in the file: Expected explicit VR, but found implicit VR; "
                     "End of file reached before delimiter (FFFE,E0DD) found"]
    assert not [r for r in caplog.records if r.name == "pydicom"]        # not logged a second time, unnamed
