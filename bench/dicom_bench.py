"""DICOM open: `load_image` of a compressed chest CR against pydicom's bare decode of it.

Baselines (both read the file from disk, like `load_image`):
* `dcmread(path).pixel_array` — pydicom with its default decoder choice;
* the fastest installed decoder plugin for the file's transfer syntax, decode only — the
  floor no reader can beat, so `load_image`'s own overhead is visible even when it picks a
  faster plugin than pydicom's default.
Without ../shared a synthetic uncompressed DICOM is written and used instead.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.timing import Timing, interleaved


@dataclass(frozen=True)
class DicomResult:
    file: str
    timings: dict[str, Timing]
    fastest_plugin: str


def write_synthetic_dicom(path: Path, size: int) -> Path:
    """A MONOCHROME2 16-bit uncompressed CR-like file with a window, for runs without ../shared."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from bench.data import synthetic_pixels

    pixels = np.clip(synthetic_pixels(size), 0, 4095).astype(np.uint16)
    cr_image_storage = "1.2.840.10008.5.1.4.1.1.1"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = cr_image_storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = cr_image_storage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 600, 1400
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _plugin_decoders(path: Path) -> dict[str, Callable[[], object]]:
    """Decode-only functions (dcmread + one plugin's as_array) for each plugin that can decode `path`."""
    import pydicom
    from pydicom.pixels import get_decoder

    ds = pydicom.dcmread(path)
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    plugins = list(decoder.available_plugins) if decoder.is_encapsulated else [""]
    found: dict[str, Callable[[], object]] = {}
    for plugin in plugins:
        def decode(plugin: str = plugin) -> object:
            return decoder.as_array(pydicom.dcmread(path), decoding_plugin=plugin)[0]
        try:
            decode()
        except Exception:  # noqa: BLE001 - a plugin that cannot decode this file is no baseline
            continue
        found[plugin or "native"] = decode
    return found


def run(path: Path, runs: int) -> DicomResult:
    import pydicom

    from cxrviewer.core.io import load_image

    plugins = _plugin_decoders(path)
    functions: dict[str, Callable[[], object]] = {
        "open": lambda: load_image(path),
        "pixel_array": lambda: pydicom.dcmread(path).pixel_array,
    }
    functions.update({f"plugin:{name}": decode for name, decode in plugins.items()})
    timings = interleaved(functions, runs, warmup=1)
    plugin_timings = {name: timing for name, timing in timings.items() if name.startswith("plugin:")}
    if not plugin_timings:   # pydicom decodes it some other way: that is the floor then
        plugin_timings = {"plugin:pixel_array": timings["pixel_array"]}
    fastest = min(plugin_timings, key=lambda name: plugin_timings[name].median)
    result = {"open": timings["open"], "pixel_array": timings["pixel_array"], "fastest_plugin": plugin_timings[fastest]}
    return DicomResult(path.name, result, fastest.split(":", 1)[1])
