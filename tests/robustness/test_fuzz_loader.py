"""Fuzzing load_image and the DICOM pipeline with thousands of mutated real and synthetic files.

Three generators, all deterministic by default so CI runs are reproducible:

* `test_mutated_files_never_crash_or_hang`: N byte-level mutants of every seed — the real
  DICOMs in ../shared/dicom, real chest JPEGs (and PNG/TIFF/BMP made from one), and small
  synthetic DICOMs covering each transfer syntax and pixel pipeline branch.
* `test_hypothesis_byte_edits`: hypothesis-chosen edits and cuts of the same seeds (shrinks a
  failure to a minimal reproducer).
* `test_hypothesis_dicom_attributes`: structure-aware — valid DICOM files whose image
  attributes (rows, bits, photometric, frames, windows, LUTs, transfer syntax…) hypothesis
  sets to unusual values, written with pydicom.

Scale with CXRVIEWER_FUZZ_EXAMPLES (mutants per seed; default 40, which keeps the module under
~3 minutes at nice 19 on a busy 2-core machine). The terminal summary prints
"fuzz: N inputs tried, M rejected with ImageLoadError, …, 0 crashes". See fuzzing.py for what
counts as a failure and where a crashing input is left for reproduction.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from tests.conftest import build_dicom_dataset
from tests.shared_data import shared_dir

from .fuzzing import FuzzRunner, Seed, examples_per_seed, hostile2_seeds, mutate, print_line

HYPOTHESIS_SHARE = 3       # hypothesis examples per test = this × CXRVIEWER_FUZZ_EXAMPLES


# ================================================================================ seeds
def _to_bytes(ds: Dataset, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, **kwargs)
    return buffer.getvalue()


def _chest(rows: int = 48, columns: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:columns] / max(rows, columns)
    body = 3000 * np.exp(-((xx - 0.5) ** 2) * 6) - 1800 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.45) ** 2) * 14)
    return np.clip(body + 900, 0, 4095).astype(np.uint16)


def _lut(descriptor: list[int], data: list[int], **extra: object) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", descriptor)
    item.add_new(0x00283006, "US", data)
    for keyword, value in extra.items():
        setattr(item, keyword, value)
    return item


def synthetic_dicoms() -> dict[str, bytes]:
    """Small DICOMs, one per transfer syntax and pixel-pipeline branch."""
    seeds: dict[str, bytes] = {}
    chest = _chest()
    seeds["native_windows"] = _to_bytes(build_dicom_dataset(
        chest, bits_stored=12, WindowCenter=[2000, 1000], WindowWidth=[3000, 500],
        WindowCenterWidthExplanation=["SOFT", "LUNG"], PixelSpacing=[0.2, 0.2]))
    lut = _lut([4096, 0, 8], [v // 16 for v in range(4096)])
    seeds["mono1_voi_lut"] = _to_bytes(build_dicom_dataset(
        chest, "MONOCHROME1", 12, VOILUTSequence=Sequence([lut])))
    modality = _lut([4096, 0, 16], [v * 2 for v in range(4096)], ModalityLUTType="US")
    seeds["modality_lut"] = _to_bytes(build_dicom_dataset(
        chest, bits_stored=12, ModalityLUTSequence=Sequence([modality]), PresentationLUTShape="INVERSE"))
    seeds["rescaled_signed"] = _to_bytes(build_dicom_dataset(
        (chest.astype(np.int16) - 2048), bits_stored=16, RescaleSlope="0.5", RescaleIntercept="-1024"))
    seeds["multiframe_8bit"] = _to_bytes(build_dicom_dataset(
        np.stack([(chest >> 4).astype(np.uint8) + i for i in range(3)])))
    rgb = np.dstack([(chest >> 4).astype(np.uint8)] * 3)
    rgb[..., 0] //= 2
    seeds["rgb"] = _to_bytes(build_dicom_dataset(rgb, "RGB"))
    palette = build_dicom_dataset((chest >> 4).astype(np.uint8), "PALETTE COLOR")
    for colour in ("Red", "Green", "Blue"):
        setattr(palette, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(palette, f"{colour}PaletteColorLookupTableData", (np.arange(256, dtype="<u2") * 257).tobytes())
    seeds["palette"] = _to_bytes(palette)
    implicit = build_dicom_dataset(chest, bits_stored=12)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    seeds["implicit_vr"] = _to_bytes(implicit)
    big = build_dicom_dataset(chest, bits_stored=12)
    big.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    big.PixelData = chest.astype(">u2").tobytes()
    seeds["big_endian"] = _to_bytes(big)
    deflated = build_dicom_dataset(chest, bits_stored=12)
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    seeds["deflated"] = _to_bytes(deflated)
    bare = DicomBytesIO()
    bare.is_little_endian, bare.is_implicit_VR = True, True
    write_dataset(bare, build_dicom_dataset(chest, bits_stored=12))
    seeds["bare_no_meta"] = bare.getvalue()
    for name, syntax in (("rle", RLELossless), ("jpeg_ls", JPEGLSLossless), ("j2k", JPEG2000Lossless)):
        ds = build_dicom_dataset(chest, bits_stored=12)
        ds.compress(syntax)
        seeds[name] = _to_bytes(ds)
    baseline = build_dicom_dataset((chest >> 4).astype(np.uint8))
    baseline.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    baseline.PixelData = encapsulate([cv2.imencode(".jpg", (chest >> 4).astype(np.uint8))[1].tobytes()])
    baseline["PixelData"].VR = "OB"
    baseline.LossyImageCompression = "01"
    seeds["jpeg_baseline"] = _to_bytes(baseline)
    return seeds


def real_raster_seeds(folder: Path | None) -> list[Seed]:
    """Real chest JPEGs from each data set, and PNG/TIFF/BMP files made from one of them."""
    if folder is None:
        return []
    data = folder / "data"
    jpegs = sorted((data / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))[:2]
    jpegs += sorted((data / "chest_xray" / "train" / "PNEUMONIA").glob("*.jpeg"))[:1]
    jpegs += sorted((data / "covid19" / "COVID-19").glob("*.jpg"))[:1]
    jpegs += sorted((data / "nih_adult_normal" / "NORMAL").glob("*.jpg"))[:1]
    seeds = [Seed(f"real_jpeg:{p.name}", p.read_bytes(), ".jpg") for p in jpegs]
    if jpegs:
        gray = cv2.imdecode(np.fromfile(jpegs[0], np.uint8), cv2.IMREAD_GRAYSCALE)
        deep = (gray.astype(np.uint16) * 257)
        float_values = gray.astype(np.float32) / 255.0
        float_values[:2, :8] = np.nan
        tiff = io.BytesIO()
        Image.fromarray(float_values, "F").save(tiff, format="TIFF")
        lzw = io.BytesIO()
        Image.fromarray(deep).save(lzw, format="TIFF", compression="tiff_lzw")
        seeds += [
            Seed("real_png:8bit", cv2.imencode(".png", gray)[1].tobytes(), ".png"),
            Seed("real_png:16bit", cv2.imencode(".png", deep)[1].tobytes(), ".png"),
            Seed("real_jpeg:progressive", cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes(), ".jpg"),
            Seed("real_tiff:float_nan", tiff.getvalue(), ".tif"),
            Seed("real_tiff:16bit_lzw", lzw.getvalue(), ".tif"),
            Seed("real_bmp:8bit", cv2.imencode(".bmp", gray[:96, :96])[1].tobytes(), ".bmp"),
        ]
    return seeds


def real_dicom_seeds(folder: Path | None) -> list[Seed]:
    if folder is None:
        return []
    seeds = []
    for path in sorted((folder / "dicom").glob("*.dcm")):
        big = path.stat().st_size > 500_000 and "j2k" in path.name   # ~0.3 s per decode
        seeds.append(Seed(f"real_dicom:{path.name}", path.read_bytes(), ".dcm", 0.34 if big else 1.0))
    return seeds


def all_seeds() -> list[Seed]:
    folder = shared_dir()
    synthetic = [Seed(f"synthetic_dicom:{name}", data, ".dcm") for name, data in synthetic_dicoms().items()]
    synthetic.append(Seed("synthetic_raster:tiny_png", cv2.imencode(".png", np.full((1, 7), 9, np.uint8))[1].tobytes(), ".png"))
    return real_dicom_seeds(folder) + real_raster_seeds(folder) + synthetic + hostile2_seeds()


SEEDS = all_seeds()
SEED_NAMES = [seed.name for seed in SEEDS]
SEEDS_BY_NAME = {seed.name: seed for seed in SEEDS}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CXRVIEWER_FUZZ_ARTIFACTS") or tmp_path_factory.mktemp("fuzz_artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _finish(runner: FuzzRunner, what: str) -> None:
    runner.finish()
    print_line(runner.summary(what) + f" (inputs and failures in {runner.artifacts})")
    assert not runner.failures, "\n".join(runner.failures[:20])


# ================================================================================ tests
def test_every_seed_loads_unmutated(artifacts: Path) -> None:
    """The seeds themselves are good files (otherwise the mutants test little)."""
    runner = FuzzRunner(artifacts / "seeds")
    for seed in SEEDS:
        runner.run(seed.data, seed, "unmutated")
    _finish(runner, "seeds")
    assert runner.opened == len(SEEDS)
    if shared_dir() is not None:
        assert sum(s.source.startswith("real") for s in SEEDS) >= 10


def test_mutated_files_never_crash_or_hang(artifacts: Path) -> None:
    runner = FuzzRunner(artifacts / "mutants")
    per_seed = examples_per_seed()
    for seed in SEEDS:
        for number in range(max(1, round(per_seed * seed.weight))):
            data, how = mutate(seed, number)
            runner.run(data, seed, f"mutant {number}: {how}")
    _finish(runner, "fuzz (byte mutations)")
    assert runner.rejected > runner.tried // 10    # the mutations really do break files


@settings(max_examples=HYPOTHESIS_SHARE * examples_per_seed(), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(SEED_NAMES),
    edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8), st.booleans()),
                   min_size=0, max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_hypothesis_byte_edits(hypothesis_runner: FuzzRunner, name: str, edits, cut) -> None:
    seed = SEEDS_BY_NAME[name]
    data = bytearray(seed.data)
    for fraction, value, in_header in edits:
        span = min(len(data), 4096) if in_header else len(data)
        at = min(int(fraction * span), len(data) - 1)
        data[at:at + len(value)] = value
    if cut is not None:
        data = data[: max(1, int(cut * len(data)))]
    assume(bytes(data) != seed.data)
    hypothesis_runner.run(bytes(data), seed, f"edits={edits!r} cut={cut!r}")
    assert not hypothesis_runner.failures, hypothesis_runner.failures[-1]


# ------------------------------------------------------------------ structure-aware DICOM
_INT_VALUES = st.sampled_from([0, 1, 2, 3, 7, 8, 11, 12, 15, 16, 17, 31, 32, 33, 64, 255, 256, 4096, 65535])
_TEXT_VALUES = st.sampled_from(["", "0", "1", "-1", "2", "1e308", "-1e308", "nan", "inf", "abc", "1\\2",
                                "1\\2\\3", "99999999999", " ", "0.0", "1e-30"])
_ATTRIBUTES = {
    "Rows": _INT_VALUES, "Columns": _INT_VALUES, "BitsAllocated": _INT_VALUES, "BitsStored": _INT_VALUES,
    "HighBit": _INT_VALUES, "SamplesPerPixel": _INT_VALUES, "PixelRepresentation": _INT_VALUES,
    "PlanarConfiguration": _INT_VALUES, "NumberOfFrames": _TEXT_VALUES,
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR",
                                                  "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
                                                  "ARGB", "CMYK", "", "FOO"]),
    "WindowCenter": _TEXT_VALUES, "WindowWidth": _TEXT_VALUES, "RescaleSlope": _TEXT_VALUES,
    "RescaleIntercept": _TEXT_VALUES, "PixelSpacing": _TEXT_VALUES, "ImagerPixelSpacing": _TEXT_VALUES,
    "PresentationLUTShape": st.sampled_from(["IDENTITY", "INVERSE", "", "X"]),
}
_SYNTAXES = st.sampled_from([None, RLELossless, JPEGLSLossless, JPEG2000Lossless])


def _base_dataset(kind: str) -> Dataset:
    chest = _chest(40, 32)     # JPEG 2000's default 6 resolution levels need 32 px or more
    if kind == "mono16":
        return build_dicom_dataset(chest, bits_stored=12)
    if kind == "multiframe":
        return build_dicom_dataset(np.stack([(chest >> 4).astype(np.uint8)] * 3))
    if kind == "rgb":
        return build_dicom_dataset(np.dstack([(chest >> 4).astype(np.uint8)] * 3), "RGB")
    if kind == "signed":
        return build_dicom_dataset(chest.astype(np.int16) - 2000, bits_stored=16)
    return build_dicom_dataset(chest, bits_stored=12, VOILUTSequence=Sequence([_lut([4096, 0, 12], list(range(4096)))]))


@settings(max_examples=HYPOTHESIS_SHARE * examples_per_seed(), deadline=None, derandomize=True,
          database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["mono16", "multiframe", "rgb", "signed", "voi_lut"]),
    syntax=_SYNTAXES,
    changes=st.dictionaries(st.sampled_from(sorted(_ATTRIBUTES)), st.just(None), min_size=1, max_size=3)
    .flatmap(lambda keys: st.fixed_dictionaries({k: _ATTRIBUTES[k] for k in keys})),
    keep_pixels=st.one_of(st.none(), st.floats(0, 1)),
)
def test_hypothesis_dicom_attributes(hypothesis_runner: FuzzRunner, kind, syntax, changes, keep_pixels) -> None:
    ds = _base_dataset(kind)
    if syntax is not None:
        ds.compress(syntax)
    for keyword, value in changes.items():
        try:
            setattr(ds, keyword, value)
        except Exception:  # noqa: BLE001 - pydicom refuses some values outright: not a file
            assume(False)
    if keep_pixels is not None:
        ds.PixelData = ds.PixelData[: int(len(ds.PixelData) * keep_pixels)]
    try:
        data = _to_bytes(ds)
    except Exception:  # noqa: BLE001 - unwritable combination
        assume(False)
    seed = Seed(f"synthetic_dicom:attributes-{kind}", data, ".dcm")
    hypothesis_runner.run(data, seed, f"{syntax} {changes!r} keep_pixels={keep_pixels!r}")
    assert not hypothesis_runner.failures, hypothesis_runner.failures[-1]


@pytest.fixture
def hypothesis_runner(request, artifacts: Path):
    runner = FuzzRunner(artifacts / request.node.name)
    yield runner
    runner.finish()
    print_line(runner.summary(f"fuzz ({request.node.name})"))


# ================================================================================ the harness
def test_the_harness_reports_hangs_escapes_and_catch_all_errors(artifacts: Path, monkeypatch) -> None:
    """The fuzz tests can fail: a slow load, an escaped exception and a catch-all are findings."""
    import time

    from cxrviewer.core.errors import ImageLoadError

    from . import fuzzing

    seed = Seed("synthetic_raster:probe", b"\x89PNG\r\n\x1a\n", ".png")
    behaviours = {
        "hang": lambda path: time.sleep(30),
        "escape": lambda path: (_ for _ in ()).throw(KeyError("escaped")),
        "catch_all": lambda path: (_ for _ in ()).throw(ImageLoadError(path, "unexpected error while reading (X)")),
        "unnamed": lambda path: (_ for _ in ()).throw(ImageLoadError("other.png", "bad")),
    }
    monkeypatch.setattr(fuzzing, "TIME_LIMIT_S", 0.5)
    runner = FuzzRunner(artifacts / "harness", record=False)
    for how, behaviour in behaviours.items():
        monkeypatch.setattr(fuzzing, "load_image", behaviour)
        runner.run(seed.data, seed, how)
    found = "\n".join(runner.failures)
    assert len(runner.failures) == 4, found
    assert "hang: no result after 0 s" in found or "hang: no result after 1 s" in found
    assert "KeyError escaped load_image" in found
    assert "loader caught an unexpected exception" in found
    assert "message does not name the file" in found


# ================================================================ what the fuzzer found
# Each of these reached the user as a crash, a hang, a traceback or an "unexpected error"
# before the loader fix next to it; they are kept as plain regression tests.

def test_rust_decoder_panic_becomes_a_load_error(tmp_path: Path, monkeypatch) -> None:
    """pylibjpeg-rle panics on an RLE segment longer than the frame (pyo3 PanicException is a
    BaseException, so `except Exception` let it through and out of the CLI and the loader thread)."""
    import struct

    from pydicom.pixels import as_pixel_options, get_decoder

    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import dicom as dicom_io
    from cxrviewer.core.io import load_image

    ds = build_dicom_dataset(np.zeros((48, 40), np.uint16), bits_stored=12)
    ds.file_meta.TransferSyntaxUID = RLELossless
    first, second = b"\x81\x00" * 16, b"\x81\x00" * 15        # 2,048 bytes where 1,920 fit
    ds.PixelData = encapsulate([struct.pack("<16I", 2, 64, 64 + len(first), *[0] * 13) + first + second])
    ds["PixelData"].VR = "OB"
    if "pylibjpeg" not in get_decoder(RLELossless).available_plugins:
        pytest.skip("pylibjpeg-rle is not installed")
    with pytest.raises(BaseException) as panic:
        get_decoder(RLELossless).as_array(ds, index=0, decoding_plugin="pylibjpeg", **as_pixel_options(ds))
    assert type(panic.value).__name__ == "PanicException" and not isinstance(panic.value, Exception)

    path = tmp_path / "rle_panic.dcm"
    ds.save_as(path, enforce_file_format=True)
    monkeypatch.setattr(dicom_io.decode, "plugin_order", lambda available: ["pylibjpeg"])
    with pytest.raises(ImageLoadError, match=r"rle_panic\.dcm: the compressed RLE Lossless image data is corrupt"):
        load_image(path)


def test_absurd_number_of_frames_is_refused_not_an_overflow(tmp_path: Path) -> None:
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import load_image

    ds = build_dicom_dataset(np.zeros((10, 10), np.uint8), NumberOfFrames="1e308")
    path = tmp_path / "frames.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageLoadError, match=r"frames\.dcm: image too large .*~10\^308 frames"):
        load_image(path)


@pytest.mark.parametrize(("element", "note"), [
    (b"\x28\x00\x02\x00US", None),                       # Samples per Pixel: found by the CI fuzzer
    (b"\x28\x00\x08\x00IS", "Number of Frames"),          # found by tools/fuzz_atheris.py
])
def test_unreadable_image_attribute_is_not_an_unexpected_error(tmp_path: Path, element: bytes, note) -> None:
    """A garbage VR made pydicom raise NotImplementedError when the element was first used."""
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import load_image

    frames = {"NumberOfFrames": 1} if note else {}
    data = bytearray(_to_bytes(build_dicom_dataset(np.zeros((8, 8), np.uint8), **frames)))
    at = data.index(element)
    data[at + 4:at + 6] = b"\x55\x80"
    path = tmp_path / "bad_vr.dcm"
    path.write_bytes(bytes(data))
    if note is None:
        with pytest.raises(ImageLoadError) as info:
            load_image(path)
        assert str(info.value).startswith("bad_vr.dcm: corrupt DICOM file"), str(info.value)
    else:
        image = load_image(path)
        assert image.frame_count == 1 and any(note in n for n in image.notes)


def test_image_size_that_is_not_a_number_is_a_corrupt_file(tmp_path: Path) -> None:
    """A damaged VR made Columns a person name: int() raised TypeError (found by atheris)."""
    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import load_image

    data = bytearray(_to_bytes(build_dicom_dataset(np.zeros((8, 8), np.uint8))))
    at = data.index(b"\x28\x00\x11\x00US")
    data[at + 4:at + 6] = b"PN"
    path = tmp_path / "pn_columns.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageLoadError, match=r"pn_columns\.dcm: corrupt DICOM file: its image size"):
        load_image(path)


def test_transfer_syntax_element_with_a_damaged_vr_is_replaced(tmp_path: Path) -> None:
    """(0002,0010) read as an empty sequence: assigning the UID to it raised TypeError (atheris)."""
    import struct

    from cxrviewer.core.io import load_image

    data = _to_bytes(build_dicom_dataset(np.zeros((8, 8), np.uint8)))
    old = b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"
    new = b"\x02\x00\x10\x00SQ\x00\x00\x00\x00\x00\x00"
    at = data.index(b"\x02\x00\x00\x00UL\x04\x00")
    length = struct.unpack("<I", data[at + 8:at + 12])[0] - len(old) + len(new)
    damaged = data.replace(old, new)
    path = tmp_path / "ts_sequence.dcm"
    path.write_bytes(damaged[:at + 8] + struct.pack("<I", length) + damaged[at + 12:])
    image = load_image(path)
    assert image.shape == (8, 8)
    assert any("does not state its transfer syntax" in note for note in image.notes)


def test_codestream_claiming_gigapixels_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    """One flipped bit in a JPEG 2000 SIZ marker made a 1760 × 1760 frame claim 3.7 gigapixels:
    openjpeg spent ~50 s and gigabytes of memory before pydicom noticed (CI fuzzer, real file)."""
    from pydicom.pixels.decoders.base import Decoder

    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import load_image

    ds = build_dicom_dataset(_chest(64, 48), bits_stored=12)
    ds.compress(JPEG2000Lossless)
    data = bytearray(_to_bytes(ds))
    siz = data.index(b"\xff\x4f\xff\x51")
    data[siz + 8:siz + 12] = (2_000_000).to_bytes(4, "big")        # Xsiz: 2 million columns
    path = tmp_path / "j2k_bomb.dcm"
    path.write_bytes(bytes(data))

    def must_not_decode(*args, **kwargs):
        raise AssertionError("a plugin was asked to decode the bomb")

    monkeypatch.setattr(Decoder, "as_array", must_not_decode)
    with pytest.raises(ImageLoadError, match=r"j2k_bomb\.dcm: .*JPEG 2000 stream says it is 64 × 2000000 pixels "
                                             r"but the DICOM header says 64 × 48"):
        load_image(path)


def test_read_header_turns_pydicom_oserror_into_a_load_error(tmp_path: Path) -> None:
    """pydicom raises OSError ("No tag to read at file position …") for some damaged sequences;
    read_header let it escape to the study browser. Mutant 4 of the real JPEG Lossless file."""
    import pydicom

    from cxrviewer.core.errors import ImageLoadError
    from cxrviewer.core.io import read_header

    name = "real_dicom:ot_16bit_voi_lut_modality_lut_jpeg_lossless.dcm"
    if name not in SEEDS_BY_NAME:
        pytest.skip("needs ../shared/dicom")
    data, _ = mutate(SEEDS_BY_NAME[name], 4)
    path = tmp_path / "no_tag.dcm"
    path.write_bytes(data)
    with pytest.raises(OSError, match="No tag to read"):
        pydicom.dcmread(path, force=True, stop_before_pixels=True)
    with pytest.raises(ImageLoadError, match=r"no_tag\.dcm: corrupt or truncated DICOM file"):
        read_header(path)
