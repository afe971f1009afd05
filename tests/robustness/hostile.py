"""A catalogue of hostile and odd image files, each built on demand into a folder.

`BAD_FILES` must be refused with a specific message naming the file; `ODD_FILES` are legal
but unusual and must open. Real files from ../shared are used where they make the case
more realistic (a truncated real JPEG, a real JPEG Lossless DICOM with a damaged header);
without them a synthetic file of the same kind is built instead.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid

from tests.conftest import build_dicom_dataset
from tests.shared_data import shared_dir

PATIENT_NAME = "Hostile^Harriet"
PATIENT_ID = "HOSTILE-0042"


# ------------------------------------------------------------------------------ helpers
def chest_pixels(rows: int = 96, columns: int = 80) -> np.ndarray:
    """8-bit gray content: a real chest radiograph when ../shared is there, else blobs."""
    folder = shared_dir()
    if folder is not None:
        jpegs = sorted((folder / "data" / "chest_xray" / "train" / "NORMAL").glob("*.jpeg"))
        if jpegs:
            gray = cv2.imdecode(np.fromfile(jpegs[0], np.uint8), cv2.IMREAD_GRAYSCALE)
            if gray is not None:
                return cv2.resize(gray, (columns, rows), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:rows, 0:columns] / max(rows, columns)
    blobs = 200 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.5) ** 2) * 12) + 120 * np.exp(-((xx - 0.7) ** 2) * 20)
    return np.clip(blobs + 20, 0, 255).astype(np.uint8)


def encode(suffix: str, pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(suffix, pixels)
    assert ok
    return data.tobytes()


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return path


def dicom(pixels: np.ndarray | None = None, **tags: object) -> Dataset:
    """A small DX dataset with identifiers (so anonymisation can be checked)."""
    pixels = (chest_pixels().astype(np.uint16) * 16) if pixels is None else pixels
    ds = build_dicom_dataset(pixels, bits_stored=12 if pixels.dtype == np.uint16 else None, **tags)
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    return ds


def real_dicom(name: str) -> Path | None:
    folder = shared_dir()
    path = folder / "dicom" / name if folder is not None else None
    return path if path is not None and path.is_file() else None


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------ bad files
def zero_bytes(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"")
    return path


def truncated_png(folder: Path) -> Path:
    data = encode(".png", chest_pixels(256, 256))
    path = folder / "cut_chest.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_jpeg(folder: Path) -> Path:
    shared = shared_dir()
    jpegs = sorted((shared / "data" / "chest_xray" / "train" / "NORMAL").glob("*.jpeg")) if shared else []
    data = jpegs[0].read_bytes() if jpegs else encode(".jpg", chest_pixels(256, 256))
    path = folder / "cut_chest.jpg"
    path.write_bytes(data[: int(len(data) * 0.4)])
    return path


def truncated_dicom(folder: Path) -> Path:
    data = save(dicom(), folder / "tmp_full.dcm").read_bytes()
    (folder / "tmp_full.dcm").unlink()
    path = folder / "cut_native.dcm"
    path.write_bytes(data[: len(data) - 3000])
    return path


def truncated_real_j2k(folder: Path) -> Path:
    source = real_dicom("cr_extremity_mono1_j2k_lossless.dcm")
    if source is None:
        ds = dicom()
        ds.compress(JPEG2000Lossless)
        data = save(ds, folder / "tmp_j2k.dcm").read_bytes()
        (folder / "tmp_j2k.dcm").unlink()
    else:
        data = source.read_bytes()
    path = folder / "cut_j2k.dcm"
    path.write_bytes(data[: len(data) // 2])
    return path


def random_bytes(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    return path


def no_pixel_data(folder: Path) -> Path:
    ds = dicom()
    del ds.PixelData
    return save(ds, folder / "header_only.dcm")


def corrupt_j2k(folder: Path) -> Path:
    ds = dicom()
    ds.compress(JPEG2000Lossless)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(300)])
    return save(ds, folder / "corrupt_j2k.dcm")


def corrupt_jpeg_lossless(folder: Path) -> Path:
    """The real 16-bit JPEG Lossless file with one byte changed right after its SOI marker.

    Before the loader's guard this took the whole process down inside GDCM (SIGABRT).
    """
    source = real_dicom("ot_16bit_voi_lut_modality_lut_jpeg_lossless.dcm")
    path = folder / "corrupt_jpeg_lossless.dcm"
    if source is None:   # no encoder for JPEG Lossless here: fake the stream, same guard
        ds = dicom()
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.70"
        ds.PixelData = encapsulate([b"\xff\xd8\x12\xdb" + bytes(200) + b"\xff\xd9"])
        ds["PixelData"].VR = "OB"
        return save(ds, path)
    data = bytearray(source.read_bytes())
    soi = data.index(b"\xff\xd8\xff")
    data[soi + 2] = 0x12
    path.write_bytes(bytes(data))
    return path


def truncated_jpeg_ls(folder: Path) -> Path:
    """A JPEG-LS stream cut short inside an intact DICOM file (CharLS used to spin for ~50 s)."""
    ds = dicom()
    ds.compress(JPEGLSLossless)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])
    return save(ds, folder / "cut_jpeg_ls.dcm")


def claimed_syntax(uid: str, name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        ds = dicom()
        ds.file_meta.TransferSyntaxUID = uid
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3junk" * 40])
        ds["PixelData"].VR = "OB"
        return save(ds, folder / name)

    return build


def jpeg_12_bit(folder: Path) -> Path:
    """JPEG Extended with 12-bit samples: legal DICOM that no installed plugin decodes."""
    ds = dicom()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.51"
    ds.PixelData = encapsulate([encode(".jpg", chest_pixels())])
    ds["PixelData"].VR = "OB"
    return save(ds, folder / "jpeg_12bit.dcm")


def j2k_codestream_bomb(folder: Path) -> Path:
    """A small JPEG 2000 DICOM whose codestream (SIZ) claims 2,000,000 columns."""
    ds = dicom()
    ds.compress(JPEG2000Lossless)
    path = save(ds, folder / "j2k_bomb.dcm")
    data = bytearray(path.read_bytes())
    siz = data.index(b"\xff\x4f\xff\x51")
    data[siz + 8:siz + 12] = (2_000_000).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def dicom_bomb(folder: Path) -> Path:
    ds = dicom()
    ds.Rows = 60000
    ds.Columns = 60000
    return save(ds, folder / "bomb.dcm")


def png_bomb(folder: Path) -> Path:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path = folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + idat + png_chunk(b"IEND", b""))
    return path


def jpeg_bomb(folder: Path) -> Path:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 60000, 60000, 1) + b"\x01\x11\x00"
    path = folder / "bomb.jpg"
    path.write_bytes(b"\xff\xd8" + sof + b"\xff\xd9")
    return path


def tiff_bomb(folder: Path) -> Path:
    """A classic little-endian TIFF whose first IFD claims 60000 × 50000 8-bit pixels."""
    entries = [
        (256, 4, 1, 60000),   # ImageWidth (LONG)
        (257, 4, 1, 50000),   # ImageLength
        (258, 3, 1, 8),       # BitsPerSample
        (259, 3, 1, 1),       # Compression: none
        (262, 3, 1, 1),       # BlackIsZero
        (273, 4, 1, 8),       # StripOffsets
        (278, 4, 1, 50000),   # RowsPerStrip
        (279, 4, 1, 16),      # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path = folder / "bomb.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 24) + bytes(16) + ifd)
    return path


def bmp_bomb(folder: Path) -> Path:
    info = struct.pack("<IiiHHIIiiII", 40, 60000, 60000, 1, 8, 0, 0, 2835, 2835, 0, 0)
    path = folder / "bomb.bmp"
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 14 + 40) + info + bytes(64))
    return path


def deflate_bomb(folder: Path, inflated_mb: int = 70) -> Path:
    """Deflated Explicit VR: a ~70 KB file whose dataset inflates to `inflated_mb` MB of zeros."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta)

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [fp.getvalue(), compressor.compress(element(0x0008, 0x0060, b"CS", b"DX"))]
    parts.append(compressor.compress(element(0x0010, 0x0020, b"LO", PATIENT_ID.encode())))
    parts.append(compressor.compress(struct.pack("<HH", 0x0009, 0x1010) + b"OB\0\0"
                                     + struct.pack("<I", inflated_mb * 2**20)))
    block = bytes(2**20)
    parts.extend(compressor.compress(block) for _ in range(inflated_mb))
    parts.append(compressor.flush())
    path = folder / "deflate_bomb.dcm"
    path.write_bytes(b"".join(parts))
    return path


# ------------------------------------------------------------------------------ odd files
def tiny_png(folder: Path, shape: tuple[int, int], name: str) -> Path:
    path = folder / name
    path.write_bytes(encode(".png", np.full(shape, 90, np.uint8)))
    return path


def one_by_n_dicom(folder: Path) -> Path:
    return save(dicom(np.arange(500, dtype=np.uint16).reshape(1, 500) * 8), folder / "one_by_500.dcm")


def nan_inf_tiff(folder: Path) -> Path:
    from PIL import Image

    values = chest_pixels().astype(np.float32) / 255.0
    values[0, :5] = np.nan
    values[1, :5] = np.inf
    values[2, :5] = -np.inf
    path = folder / "float_nan_inf.tif"
    Image.fromarray(values, "F").save(path)
    return path


def huge_metadata(folder: Path) -> Path:
    """20,000 private elements, a 10,000-character comment, a 4 MB private blob, a sequence nested 40 deep."""
    ds = dicom()
    ds.ImageComments = "x" * 10_000
    block = ds.private_block(0x0011, "CXRVIEWER HOSTILE", create=True)
    block.add_new(0x00, "OB", bytes(4 * 2**20))
    for offset in range(0x01, 0x100):
        block.add_new(offset, "LO", f"value {offset}")
    for group in range(0x0013, 0x0013 + 2 * 78, 2):   # 78 more private groups × 256
        more = ds.private_block(group, f"HOSTILE {group:04X}", create=True)
        for offset in range(0x00, 0x100):
            more.add_new(offset, "SH", f"{group:04X}.{offset}")
    item = Dataset()
    item.CodeMeaning = "innermost"
    for depth in range(40):
        outer = Dataset()
        outer.CodeMeaning = f"level {depth}"
        outer.ContentSequence = Sequence([item])
        item = outer
    ds.ContentSequence = Sequence([item])
    return save(ds, folder / "huge_metadata.dcm")


def non_ascii_name(folder: Path) -> Path:
    return save(dicom(), folder / "Röntgen_胸部_ñ_αβγ.dcm")


def very_long_name(folder: Path) -> Path:
    """A 250-byte file name inside folders nested until the path is ~1,200 characters."""
    deep = folder
    for level in range(4):
        deep = deep / (f"level{level}_" + "d" * 240)
    deep.mkdir(parents=True, exist_ok=True)
    return save(dicom(), deep / ("long_" + "n" * 241 + ".dcm"))


# ------------------------------------------------------------------------------ catalogue
@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]
    fragments: tuple[str, ...] = ()      # all must appear in the message (bad files)
    max_pixels: int | None = None        # CXRVIEWER_MAX_PIXELS while the case runs
    note: str = ""                       # a note the opened image must carry (odd files)


BAD_FILES: tuple[Case, ...] = (
    Case("zero_byte_dcm", lambda f: zero_bytes(f, "empty.dcm"), ("empty file (0 bytes)",)),
    Case("zero_byte_png", lambda f: zero_bytes(f, "empty.png"), ("empty file (0 bytes)",)),
    Case("truncated_png", truncated_png, ("truncated PNG file",)),
    Case("truncated_jpeg", truncated_jpeg, ("truncated JPEG file",)),
    Case("truncated_dicom", truncated_dicom, ("truncated",)),
    Case("truncated_j2k_dicom", truncated_real_j2k, ("truncated",)),
    Case("random_bytes_dcm", lambda f: random_bytes(f, "noise.dcm"), ("not an image or DICOM file",)),
    Case("random_bytes_png", lambda f: random_bytes(f, "noise.png"), ("not an image or DICOM file",)),
    Case("dicom_without_pixel_data", no_pixel_data, ("no Pixel Data",)),
    Case("corrupt_j2k_stream", corrupt_j2k, ("JPEG 2000", "corrupt")),
    Case("corrupt_jpeg_lossless_header", corrupt_jpeg_lossless, ("JPEG Lossless", "cannot be decoded")),
    Case("truncated_jpeg_ls_stream", truncated_jpeg_ls, ("JPEG-LS", "end-of-image marker is missing")),
    Case("unsupported_j2k_part2", claimed_syntax("1.2.840.10008.1.2.4.92", "j2k_part2.dcm"),
         ("unsupported transfer syntax JPEG 2000 Part 2", "1.2.840.10008.1.2.4.92", "gdcmconv")),
    Case("unsupported_mpeg4", claimed_syntax("1.2.840.10008.1.2.4.102", "video.dcm"),
         ("unsupported transfer syntax MPEG-4", "still radiographs")),
    Case("unsupported_private_syntax", claimed_syntax("1.2.3.4.5.6.7", "private_syntax.dcm"),
         ("unsupported transfer syntax", "1.2.3.4.5.6.7", "no installed pydicom decoder plugin")),
    Case("unsupported_jpeg_12bit", jpeg_12_bit,
         ("unsupported transfer syntax variant JPEG Extended", "12-bit", "pylibjpeg-libjpeg")),
    Case("dicom_dimension_bomb", dicom_bomb, ("image too large", "60000 × 60000", "CXRVIEWER_MAX_PIXELS")),
    Case("j2k_codestream_bomb", j2k_codestream_bomb, ("JPEG 2000 stream says it is 96 × 2000000 pixels",
                                                      "DICOM header says 96 × 80")),
    Case("png_dimension_bomb", png_bomb, ("image too large", "60000 × 60000")),
    Case("jpeg_dimension_bomb", jpeg_bomb, ("image too large", "60000 × 60000")),
    Case("tiff_dimension_bomb", tiff_bomb, ("image too large", "50000 × 60000")),
    Case("bmp_dimension_bomb", bmp_bomb, ("image too large", "60000 × 60000")),
    Case("deflate_bomb", deflate_bomb, ("expands to more than", "decompression bomb"), max_pixels=10_000),
)

ODD_FILES: tuple[Case, ...] = (
    Case("one_by_one_png", lambda f: tiny_png(f, (1, 1), "one_by_one.png")),
    Case("one_by_n_dicom", one_by_n_dicom),
    Case("n_by_one_png", lambda f: tiny_png(f, (700, 1), "seven_hundred_by_one.png")),
    Case("nan_inf_float_tiff", nan_inf_tiff, note="not finite"),
    Case("huge_metadata", huge_metadata),
    Case("non_ascii_name", non_ascii_name),
    Case("very_long_name_and_path", very_long_name),
)
