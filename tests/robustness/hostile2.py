"""The second hostile corpus (issue #14): files that hung the viewer or exhausted memory.

Each builder writes one file into a folder and returns its path. They are small: a "3.5 GB"
file is sparse, a "30000²" JPEG 2000 image only claims that size in its header.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless, RLELossless

from .hostile import chest_pixels, dicom, save

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
JP2_FTYP = struct.pack(">I4s4sI4s", 20, b"ftyp", b"jp2 ", 0, b"jp2 ")


def box(kind: bytes, body: bytes, length: int | None = None) -> bytes:
    """A JP2 box; `length` overrides the real one (0 = "to the end of the file")."""
    return struct.pack(">I4s", len(body) + 8 if length is None else length, kind) + body


def j2k_codestream() -> tuple[bytes, object]:
    """A real 96 × 80 JPEG 2000 codestream and the dataset it came from."""
    ds = dicom()
    ds.compress(JPEG2000Lossless)
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    return stream, ds


def j2k_dicom(folder: Path, name: str, stream: bytes, ds: object | None = None) -> Path:
    if ds is None:
        _, ds = j2k_codestream()
    ds.PixelData = encapsulate([stream])
    return save(ds, folder / name)


def set_siz_size(stream: bytes, rows: int, columns: int) -> bytes:
    data = bytearray(stream)
    at = data.index(b"\xff\x4f\xff\x51")
    data[at + 8:at + 16] = struct.pack(">II", columns, rows)
    return bytes(data)


# ------------------------------------------------------------------------------ not regular files
def fifo(folder: Path, name: str = "x.png") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def dev_zero_link(folder: Path) -> Path:
    path = folder / "big.dcm"
    path.symlink_to("/dev/zero")
    return path


def symlink_loop(folder: Path) -> Path:
    path = folder / "loop.png"
    path.symlink_to(path.name)
    return path


def sparse_huge_dicom(folder: Path, size: int = 3_500 * 2**20) -> Path:
    """A DICOM header declaring 42000 × 42000 in front of a sparse file of `size` bytes."""
    ds = dicom(np.zeros((4, 4), np.uint16))
    path = save(ds, folder / "sparse_huge.dcm")
    data = bytearray(path.read_bytes())
    for tag, value in ((b"\x28\x00\x10\x00", 42000), (b"\x28\x00\x11\x00", 42000)):   # Rows, Columns (US)
        at = data.index(tag + b"US")
        data[at + 8:at + 10] = struct.pack("<H", value)
    with path.open("wb") as handle:
        handle.write(bytes(data))
        handle.truncate(size)
    return path


# ------------------------------------------------------------------------------ JPEG 2000 wrapper
def jp2_zero_length_box(folder: Path) -> Path:
    """JP2-wrapped codestream with an 'xml ' box of length 0 before it: pydicom's box walk never ends."""
    stream, ds = j2k_codestream()
    wrapped = JP2_SIGNATURE + JP2_FTYP + box(b"xml ", b"<x/>", length=0) + box(b"jp2c", stream)
    return j2k_dicom(folder, "jp2_zero_box.dcm", wrapped, ds)


def jp2_short_box(folder: Path) -> Path:
    stream, ds = j2k_codestream()
    wrapped = JP2_SIGNATURE + JP2_FTYP + box(b"xml ", b"<x/>", length=3) + box(b"jp2c", stream)
    return j2k_dicom(folder, "jp2_short_box.dcm", wrapped, ds)


def jp2_header(rows: int = 96, columns: int = 80) -> bytes:
    ihdr = box(b"ihdr", struct.pack(">IIHBBBB", rows, columns, 1, 15, 7, 0, 0))   # 16-bit gray
    colr = box(b"colr", struct.pack(">BBBI", 1, 0, 0, 17))                      # greyscale
    return box(b"jp2h", ihdr + colr)


def jp2_valid(folder: Path) -> Path:
    """A legal JP2 wrapper whose codestream box has length 0 (it runs to the end)."""
    stream, ds = j2k_codestream()
    wrapped = JP2_SIGNATURE + JP2_FTYP + jp2_header() + box(b"xml ", b"<x/>") + box(b"jp2c", stream, length=0)
    return j2k_dicom(folder, "jp2_valid.dcm", wrapped, ds)


def jp2_late_siz_bomb(folder: Path) -> Path:
    """JP2-wrapped codestream behind a 7 kB box, whose SIZ claims 30000 × 30000."""
    stream, ds = j2k_codestream()
    wrapped = JP2_SIGNATURE + JP2_FTYP + box(b"xml ", b" " * 7000) + box(b"jp2c", set_siz_size(stream, 30000, 30000))
    return j2k_dicom(folder, "jp2_late_siz.dcm", wrapped, ds)


# ------------------------------------------------------------------------------ size guards stepped around
def tiff_duplicate_size_tags(folder: Path) -> Path:
    """ImageWidth/ImageLength given twice: 24000 × 24000 first (libtiff's), 64 × 64 last (Pillow's)."""
    entries = [
        (256, 4, 1, 24000), (256, 4, 1, 64),
        (257, 4, 1, 24000), (257, 4, 1, 64),
        (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 8), (278, 4, 1, 24000), (279, 4, 1, 16),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path = folder / "duplicate_tags.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 24) + bytes(16) + ifd)
    return path


def rle_segment_bomb(folder: Path, expands_to: int = 64 * 2**20) -> Path:
    """A 64 × 64 RLE DICOM whose one segment expands to `expands_to` bytes (2 bytes → 128 each)."""
    ds = dicom(np.zeros((64, 64), np.uint8))
    ds.file_meta.TransferSyntaxUID = RLELossless
    header = struct.pack("<16I", 1, 64, *([0] * 14))
    ds.PixelData = encapsulate([header + b"\x81\x00" * (expands_to // 128)])
    ds["PixelData"].VR = "OB"
    return save(ds, folder / "rle_bomb.dcm")


def rle_valid(folder: Path) -> Path:
    ds = dicom()
    ds.compress(RLELossless)
    return save(ds, folder / "rle_valid.dcm")


def deflated_item_bomb(folder: Path, items: int = 5_000_000) -> Path:
    """Deflated Explicit VR: a ~60 kB file inflating to a sequence of `items` empty items."""
    import zlib

    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [fp.getvalue(), compressor.compress(struct.pack("<HH", 0x0040, 0x0275) + b"SQ\0\0" + b"\xff" * 4)]
    block = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * 100_000
    parts.extend(compressor.compress(block) for _ in range(items // 100_000))
    parts.append(compressor.compress(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"))
    parts.append(compressor.flush())
    path = folder / "deflated_items.dcm"
    path.write_bytes(b"".join(parts))
    return path


# ------------------------------------------------------------------------------ quiet partial decodes
def progressive_jpeg_bytes(rows: int = 256, columns: int = 256, mode: str = "L") -> bytes:
    """A progressive JPEG written by Pillow (several scans: DC first, then AC bands and refinements)."""
    import io

    from PIL import Image

    pixels = (chest_pixels(rows, columns) >> 4).astype(np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", progressive=True, quality=90)
    return buffer.getvalue()


def truncated_progressive_jpeg(folder: Path, keep: float = 0.5, mode: str = "L") -> Path:
    """A progressive JPEG cut after `keep` of its bytes, with a new end-of-image marker (FF D9)."""
    data = progressive_jpeg_bytes(mode=mode)
    path = folder / "cut_progressive.jpg"
    path.write_bytes(data[:int(len(data) * keep)] + b"\xff\xd9")
    return path


def png_with_text_chunk(folder: Path, kind: bytes = b"zTXt", size: int = 50 * 2**20) -> Path:
    """A valid 96 × 80 PNG carrying a `size`-byte text chunk before its image data."""
    import zlib

    from .hostile import encode, png_chunk

    png = encode(".png", (chest_pixels() >> 4).astype(np.uint8))
    text = np.random.default_rng(14).bytes(size)           # incompressible: the chunk itself is big
    body = b"Comment\0" + (b"\0" + zlib.compress(text, 0) if kind == b"zTXt" else text)
    at = png.index(b"IDAT") - 4
    path = folder / f"big_{kind.decode()}.png"
    path.write_bytes(png[:at] + png_chunk(kind, body) + png[at:])
    return path


def plain_item_bomb(folder: Path, items: int = 5_000_000) -> Path:
    """A plain (not deflated) DICOM file with a sequence of `items` empty items: 40 MB of file."""
    ds = dicom()
    path = save(ds, folder / "plain_items.dcm")
    data = path.read_bytes()
    bomb = struct.pack("<HH", 0x0040, 0x0275) + b"SQ\0\0" + b"\xff" * 4
    bomb += b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * items + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    at = data.index(b"\x10\x00\x10\x00PN")          # before (0010,0010), keeping tag order
    path.write_bytes(data[:at] + bomb + data[at:])
    return path
