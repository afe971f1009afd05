"""Small synthetic images for GUI tests: PNGs via OpenCV, DICOMs via pydicom."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

PATIENT_NAME = "Doe^Jane"
PATIENT_NAME_SHOWN = "Doe, Jane"
PATIENT_ID = "PID-12345"


def gradient(rows: int = 200, cols: int = 300, high: int = 4000) -> np.ndarray:
    """A horizontal ramp with a bright disc and a dark square: orientation is obvious."""
    ramp = np.linspace(0, high, cols, dtype=np.float64)[None, :].repeat(rows, axis=0)
    yy, xx = np.mgrid[0:rows, 0:cols]
    disc = (yy - rows * 0.3) ** 2 + (xx - cols * 0.25) ** 2 < (min(rows, cols) * 0.15) ** 2
    ramp[disc] = high
    ramp[int(rows * 0.65): int(rows * 0.85), int(cols * 0.65): int(cols * 0.85)] = 0
    return ramp.astype(np.uint16)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")
    return path


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    pixel_spacing: tuple[float, float] | None = None,
    imager_pixel_spacing: tuple[float, float] | None = None,
    windows: list[tuple[float, float]] | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    photometric: str = "MONOCHROME2",
    patient_name: str = PATIENT_NAME,
    patient_id: str = PATIENT_ID,
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int = 1,
) -> Path:
    """An uncompressed 16-bit DICOM; `pixels` is (rows, cols) or (frames, rows, cols)."""
    pixels = np.asarray(pixels, dtype=np.uint16)
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    rows, cols = pixels.shape[-2:]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700102"
    ds.PatientSex = "F"
    ds.AccessionNumber = "ACC-777"
    ds.InstitutionName = "Teaching Hospital"
    ds.StudyDate = "20240315"
    ds.StudyDescription = "Chest PA"
    ds.SeriesDescription = "PA"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.Modality = "CR"
    ds.ViewPosition = "PA"
    ds.BodyPartExamined = "CHEST"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if pixel_spacing is not None:
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = [f"{v:g}" for v in imager_pixel_spacing]
    if windows:
        ds.WindowCenter = [f"{c:g}" for c, _ in windows] if len(windows) > 1 else f"{windows[0][0]:g}"
        ds.WindowWidth = [f"{w:g}" for _, w in windows] if len(windows) > 1 else f"{windows[0][1]:g}"
    if slope is not None or intercept is not None:
        ds.RescaleSlope = f"{slope if slope is not None else 1:g}"
        ds.RescaleIntercept = f"{intercept if intercept is not None else 0:g}"
        ds.RescaleType = "US"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
