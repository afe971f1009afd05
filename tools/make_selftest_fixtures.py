"""Write the tiny images `cxrviewer selftest` decodes: resources/selftest/*.{png,jpg,tif,bmp,dcm}.

Usage: .venv/bin/python tools/make_selftest_fixtures.py [--out resources/selftest]

Every file holds the same synthetic "chest" (two dark lung fields in a brighter body, 12-bit,
96 x 80): 16-bit files the 12-bit array itself, 8-bit files its top 8 bits. The manifest
(`manifest.json`) records the sha256 of both reference arrays, so the self-test can check
that every lossless decoder returns exactly these pixels, and compares the lossy JPEGs with
the 8-bit reference within a tolerance.

The compressed DICOMs are made with pydicom's own encoders (RLE, JPEG-LS, JPEG 2000
lossless); the JPEG Baseline DICOM wraps an OpenCV JPEG stream (pydicom has no JPEG
Baseline encoder). The output is deterministic: rerunning the script rewrites the same bytes.
Synthetic pixels only — no patient data.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROWS, COLUMNS = 96, 80
BITS_STORED = 12
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, with fixed entropy below
MANIFEST = "manifest.json"
JPEG_QUALITY = 95
JPEG_MAX_MEAN_ABS_ERROR = 2.0  # gray levels (0-255) against the 8-bit reference

# pydicom plugin names that must decode each compressed syntax in every build (the app ships them)
REQUIRED_PLUGINS = {
    "1.2.840.10008.1.2.5": ["pydicom", "pylibjpeg"],      # RLE Lossless: native + pylibjpeg-rle
    "1.2.840.10008.1.2.4.80": ["pyjpegls", "gdcm"],        # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90": ["pylibjpeg", "gdcm"],       # JPEG 2000 Lossless: pylibjpeg-openjpeg
    "1.2.840.10008.1.2.4.50": ["gdcm", "pillow"],          # JPEG Baseline (no GPL libjpeg)
}


def reference_gray16() -> np.ndarray:
    """The 12-bit synthetic chest (uint16, values 0..4095), rounded once from float math."""
    yy, xx = np.mgrid[0:ROWS, 0:COLUMNS].astype(np.float64)
    y, x = yy / (ROWS - 1), xx / (COLUMNS - 1)
    body = 2600.0 * np.exp(-(((x - 0.5) / 0.48) ** 6 + ((y - 0.55) / 0.5) ** 6))
    lungs = sum(
        1500.0 * np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.48) / 0.28) ** 2)) for cx in (0.30, 0.70)
    )
    spine = 900.0 * np.exp(-((x - 0.5) / 0.05) ** 2) * (body > 1000)
    ribs = 180.0 * (np.sin(y * 40.0) > 0.6) * (lungs > 400)
    pixels = 300.0 + body - lungs + spine + ribs
    return np.clip(np.rint(pixels), 0, 2**BITS_STORED - 1).astype(np.uint16)


def reference_gray8(gray16: np.ndarray) -> np.ndarray:
    return (gray16 >> (BITS_STORED - 8)).astype(np.uint8)


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _uid(name: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=UID_ROOT, entropy_srcs=["cxrviewer-selftest", name]))


def dicom_dataset(pixels: np.ndarray, bits_stored: int, name: str):
    """A minimal valid DX For Presentation dataset (Explicit VR Little Endian)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = _uid(name)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName = "SELFTEST^SYNTHETIC"
    ds.PatientID = "SELFTEST"
    ds.StudyInstanceUID = _uid("study")
    ds.SeriesInstanceUID = _uid("series")
    ds.StudyDate = "20240101"
    ds.Modality = "DX"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageComments = "cxrviewer self-test image: synthetic, not a radiograph"
    ds.set_pixel_data(pixels, "MONOCHROME2", bits_stored, generate_instance_uid=False)
    if bits_stored > 8:
        ds.WindowCenter = 1600
        ds.WindowWidth = 3000
    return ds


def _encode(suffix: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, encoded = cv2.imencode(suffix, image, params or [])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {suffix}")
    return encoded.tobytes()


def write_fixtures(out: Path) -> dict:
    """Write every fixture and the manifest into `out`; return the manifest."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

    out.mkdir(parents=True, exist_ok=True)
    gray16 = reference_gray16()
    gray8 = reference_gray8(gray16)
    fixtures: list[dict] = []

    def add(file: str, kind: str, data: bytes, reference: str, **extra) -> None:
        (out / file).write_bytes(data)
        fixtures.append({"file": file, "kind": kind, "reference": reference, **extra})

    add("png8.png", "PNG 8-bit", _encode(".png", gray8), "gray8", lossless=True)
    add("png16.png", "PNG 16-bit", _encode(".png", gray16), "gray16", lossless=True)
    add("jpeg8.jpg", "JPEG", _encode(".jpg", gray8, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]),
        "gray8", lossless=False, max_mean_abs_error=JPEG_MAX_MEAN_ABS_ERROR)
    add("tiff16.tif", "TIFF 16-bit", _encode(".tif", gray16), "gray16", lossless=True)
    add("bmp8.bmp", "BMP 8-bit", _encode(".bmp", gray8), "gray8", lossless=True)

    def add_dicom(file: str, kind: str, syntax: str | None, plugin: str = "") -> None:
        ds = dicom_dataset(gray16, BITS_STORED, file)
        if syntax is not None:
            ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
        path = out / file
        ds.save_as(path, enforce_file_format=True)
        uid = str(ds.file_meta.TransferSyntaxUID)
        fixtures.append({
            "file": file, "kind": kind, "reference": "gray16", "lossless": True,
            "transfer_syntax": uid, "required_plugins": REQUIRED_PLUGINS.get(uid, []),
        })

    add_dicom("dicom_explicit_le.dcm", "DICOM uncompressed", None)
    add_dicom("dicom_rle.dcm", "DICOM RLE", RLELossless, "pydicom")
    add_dicom("dicom_jpegls.dcm", "DICOM JPEG-LS", JPEGLSLossless, "pyjpegls")
    add_dicom("dicom_j2k.dcm", "DICOM JPEG 2000", JPEG2000Lossless, "pylibjpeg")

    ds = dicom_dataset(gray8, 8, "dicom_jpeg_baseline.dcm")
    ds.PixelData = encapsulate([_encode(".jpg", gray8, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    ds.save_as(out / "dicom_jpeg_baseline.dcm", enforce_file_format=True)
    fixtures.append({
        "file": "dicom_jpeg_baseline.dcm", "kind": "DICOM JPEG Baseline", "reference": "gray8",
        "lossless": False, "max_mean_abs_error": JPEG_MAX_MEAN_ABS_ERROR,
        "transfer_syntax": str(JPEGBaseline8Bit), "required_plugins": REQUIRED_PLUGINS[str(JPEGBaseline8Bit)],
    })

    manifest = {
        "about": "Synthetic fixtures for `cxrviewer selftest`, made by tools/make_selftest_fixtures.py.",
        "references": {
            "gray16": {"shape": list(gray16.shape), "dtype": "uint16", "sha256": digest(gray16)},
            "gray8": {"shape": list(gray8.shape), "dtype": "uint8", "sha256": digest(gray8)},
        },
        "fixtures": fixtures,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "resources" / "selftest"
    parser.add_argument("--out", type=Path, default=default, help=f"output folder (default {default})")
    args = parser.parse_args(argv)
    manifest = write_fixtures(args.out)
    total = sum((args.out / f["file"]).stat().st_size for f in manifest["fixtures"])
    print(f"wrote {len(manifest['fixtures'])} fixtures ({total / 1024:.1f} KiB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
