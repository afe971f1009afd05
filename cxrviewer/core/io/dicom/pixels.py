"""The DICOM pixel pipeline after decoding, in order, each step a small function:

    (colour → gray) → Modality LUT → VOI (LUT sequence, else the file's windows as presets,
    else a percentile auto-window) → polarity (MONOCHROME1 inverts once); pixel spacing.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, convert_color_space
from pydicom.uid import UID

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import apply_window, full_range_window, percentile_window
from cxrviewer.core.io._common import PRESET_AUTO, PRESET_FULL, PRESET_VOI_LUT, rgb_to_gray
from cxrviewer.core.io.dicom.header import _as_list, _short, tag_value
from cxrviewer.core.types import SpacingKind, Window, WindowPreset

log = logging.getLogger(__name__)


FLAT_FRACTION = 0.98


class MalformedLut(ValueError):
    """A Modality or VOI LUT sequence item that cannot be applied."""


def colour_to_gray(path: Path, arr: np.ndarray, photometric: str, ds: Dataset) -> np.ndarray:
    """RGB / YBR / PALETTE COLOR → RGB → luminance."""
    try:
        if photometric == "PALETTE COLOR":
            rgb = apply_color_lut(arr, ds)
        elif photometric.startswith("YBR") and arr.ndim == 3:
            rgb = convert_color_space(arr, photometric, "RGB")
        else:
            rgb = arr
    except Exception as exc:  # noqa: BLE001 - malformed palettes raise assorted errors
        raise ImageLoadError(path, f"the colour lookup table is malformed ({_short(exc)})") from exc
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return rgb_to_gray(rgb)


def _is_little_endian(ds: Dataset) -> bool:
    little = getattr(ds, "original_encoding", (None, None))[1]
    if little is None:
        uid = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) else None
        return True if uid is None else bool(UID(uid).is_little_endian)
    return bool(little)


def read_lut(item: Dataset, ds: Dataset) -> tuple[int, np.ndarray]:
    """(first mapped value, table) of a Modality/VOI LUT item; MalformedLut when unusable."""
    descriptor = item.get("LUTDescriptor")
    if descriptor is None or descriptor == "" or descriptor == b"":
        raise MalformedLut("LUT Descriptor missing")
    if isinstance(descriptor, (bytes, bytearray)):
        order = "<" if _is_little_endian(ds) else ">"
        descriptor = list(np.frombuffer(descriptor[:6], dtype=f"{order}u2"))
    values = list(descriptor) if isinstance(descriptor, (list, MultiValue, tuple)) else [descriptor]
    if len(values) != 3:
        raise MalformedLut(f"LUT Descriptor has {len(values)} values instead of 3")
    entries, first_mapped, bits = (int(v) for v in values)
    entries = entries or 65536
    if int(tag_value(ds, "PixelRepresentation", 0)) == 1 and first_mapped >= 32768:
        first_mapped -= 65536
    table = _lut_table(item, ds, entries, bits)
    return first_mapped, table


def _lut_table(item: Dataset, ds: Dataset, entries: int, bits: int) -> np.ndarray:
    raw = item.get("LUTData")
    if raw is None or (isinstance(raw, (bytes, bytearray, list, MultiValue)) and len(raw) == 0):
        raise MalformedLut("LUT Data missing")
    if isinstance(raw, (bytes, bytearray)):
        if bits == 8 and len(raw) == entries:
            table = np.frombuffer(raw, dtype=np.uint8)
        else:
            order = "<" if _is_little_endian(ds) else ">"
            table = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=f"{order}u2")
    elif isinstance(raw, (int, float)):
        table = np.array([raw])
    else:
        table = np.asarray(list(raw))
    if table.size == 0:
        raise MalformedLut("LUT Data is empty")
    return table.astype(np.float32)


def apply_lut(values: np.ndarray, first_mapped: int, table: np.ndarray) -> np.ndarray:
    """Look `values` up in `table`; values below/above the table clamp to its first/last entry."""
    if np.issubdtype(values.dtype, np.integer):
        index = values.astype(np.int64)
    else:
        index = np.rint(values).astype(np.int64)
    index -= first_mapped
    np.clip(index, 0, table.size - 1, out=index)
    return table[index]


def apply_modality(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """Modality LUT sequence, else Rescale Slope/Intercept; a malformed sequence never fails."""
    notes: tuple[str, ...] = ()
    sequence = tag_value(ds, "ModalityLUTSequence")
    if sequence:
        try:
            first_mapped, table = read_lut(sequence[0], ds)
            return apply_lut(arr, first_mapped, table).astype(np.float32), notes
        except Exception as exc:  # noqa: BLE001 - a broken LUT falls back, it never fails
            fallback = "Rescale Slope/Intercept" if _has_rescale(ds) else "stored values"
            notes += (f"Modality LUT sequence is malformed ({exc}); using {fallback}",)
    pixels, rescale_notes = apply_rescale(arr, ds)
    return pixels, notes + rescale_notes


def _has_rescale(ds: Dataset) -> bool:
    return tag_value(ds, "RescaleSlope") is not None or tag_value(ds, "RescaleIntercept") is not None


def apply_rescale(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """stored × slope + intercept (defaults 1 and 0), as float32."""
    pixels = arr.astype(np.float32)
    try:
        slope = float(tag_value(ds, "RescaleSlope", 1.0))
        intercept = float(tag_value(ds, "RescaleIntercept", 0.0))
    except (TypeError, ValueError):
        return pixels, ("Rescale Slope/Intercept cannot be read; using stored values",)
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        return pixels, (f"Rescale Slope {slope:g} / Intercept {intercept:g} is invalid; using stored values",)
    if slope != 1.0:
        pixels *= np.float32(slope)
    if intercept != 0.0:
        pixels += np.float32(intercept)
    return pixels, ()


def stored_windows(ds: Dataset) -> list[WindowPreset]:
    """Each valid Window Center/Width pair, named from its explanation when there is one."""
    centers = _as_list(tag_value(ds, "WindowCenter"))
    widths = _as_list(tag_value(ds, "WindowWidth"))
    explanations = _as_list(tag_value(ds, "WindowCenterWidthExplanation"))
    presets: list[WindowPreset] = []
    used: set[str] = set()
    for i, (center, width) in enumerate(zip(centers, widths)):
        try:
            c, w = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
            continue
        label = str(explanations[i]).strip() if i < len(explanations) else ""
        name = label or f"Window {i + 1} ({c:g}/{w:g})"
        if name in used or name in (PRESET_AUTO, PRESET_FULL, PRESET_VOI_LUT):
            name = f"{name} ({i + 1})"
        used.add(name)
        presets.append(WindowPreset(name, Window(c, w)))
    return presets


def _sample(pixels: np.ndarray, target: int = 250_000) -> np.ndarray:
    flat = pixels.reshape(-1)
    step = max(1, flat.size // target)
    return flat[::step]


def window_leaves_flat(pixels: np.ndarray, window: Window, fraction: float = FLAT_FRACTION) -> bool:
    """True when `window` shows the image as (almost) one gray: ≥98% of pixels on one level,
    or 98% of them within a band of 2 gray levels."""
    shown = apply_window(_sample(pixels), window)
    if shown.size == 0:
        return False
    counts = np.bincount(shown, minlength=256)
    if counts.max() >= fraction * shown.size:
        return True
    low, high = np.percentile(shown, [(1 - fraction) * 50, 100 - (1 - fraction) * 50])
    return bool(high - low < 2)


def choose_voi(pixels: np.ndarray, ds: Dataset, monochrome: bool) -> tuple[
        np.ndarray, Window, tuple[WindowPreset, ...], tuple[str, ...]]:
    """VOI LUT sequence when present (its output becomes the pixels), else the file's windows."""
    notes: tuple[str, ...] = ()
    sequence = tag_value(ds, "VOILUTSequence") if monochrome else None
    if sequence:
        try:
            first_mapped, table = read_lut(sequence[0], ds)
            lut_pixels = apply_lut(pixels, first_mapped, table).astype(np.float32)
            lut_window = Window.spanning(float(table.min()), float(table.max()), min_width=1.0)
            presets: tuple[WindowPreset, ...] = (
                WindowPreset(PRESET_VOI_LUT, lut_window),
                WindowPreset(PRESET_AUTO, percentile_window(lut_pixels)),
                WindowPreset(PRESET_FULL, full_range_window(lut_pixels)),
            )
            return lut_pixels, lut_window, presets, notes
        except Exception as exc:  # noqa: BLE001 - a broken LUT falls back, it never fails
            notes += (f"VOI LUT sequence is malformed ({exc}); using the window settings instead",)

    windows = stored_windows(ds)
    auto = percentile_window(pixels)
    presets = (*windows, WindowPreset(PRESET_AUTO, auto), WindowPreset(PRESET_FULL, full_range_window(pixels)))
    if not windows:
        return pixels, auto, presets, notes
    first = windows[0].window
    if window_leaves_flat(pixels, first):
        notes += (f"the file's window ({first.center:g}/{first.width:g}) shows an almost uniform image; "
                  "showing an automatic window instead",)
        return pixels, auto, presets, notes
    return pixels, first, presets, notes


def display_inversion(photometric: str, ds: Dataset) -> tuple[bool, tuple[str, ...]]:
    """Invert once for MONOCHROME1 (INVERSE there says the same); INVERSE on MONOCHROME2 inverts."""
    shape = str(tag_value(ds, "PresentationLUTShape", "")).strip().upper()
    if photometric == "MONOCHROME1":
        if shape == "IDENTITY":
            return True, ("Presentation LUT Shape IDENTITY contradicts MONOCHROME1; shown as MONOCHROME1",)
        return True, ()
    if photometric == "MONOCHROME2":
        return shape == "INVERSE", ()
    return False, ()


def _valid_spacing(value: Any) -> tuple[float, float] | None:
    values = _as_list(value)
    if len(values) < 2:
        return None
    try:
        row, column = float(values[0]), float(values[1])
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(row) and np.isfinite(column)) or row <= 0 or column <= 0:
        return None
    return row, column


def _functional_group_spacing(ds: Dataset) -> Any:
    try:
        return ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].get("PixelSpacing")
    except Exception:  # noqa: BLE001 - absent or malformed functional groups: no spacing here
        return None


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, SpacingKind]:
    """Pixel Spacing → PATIENT, else Imager Pixel Spacing → DETECTOR, else NONE (zeros ignored)."""
    for value, kind in (
        (tag_value(ds, "PixelSpacing"), SpacingKind.PATIENT),
        (_functional_group_spacing(ds), SpacingKind.PATIENT),
        (tag_value(ds, "ImagerPixelSpacing"), SpacingKind.DETECTOR),
    ):
        spacing = _valid_spacing(value)
        if spacing:
            return spacing, kind
    return None, SpacingKind.NONE
