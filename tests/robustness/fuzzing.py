"""The fuzz harness: seed files, byte mutators, and one bounded, checked load per input.

Every input is written to one fixed file in the artifacts folder before it is loaded, so if
the process dies (a crash in a C decoder) or hangs (the watchdog dumps every thread's stack
and exits), that file is the reproducer. A Python-level hang is interrupted by SIGALRM and
recorded as a failure; a hang inside C code is caught by `faulthandler.dump_traceback_later`,
which ends the test run: a hang is a failure either way.

An input passes when `load_image` either returns a sane, displayable XrayImage or raises
ImageLoadError with a specific message naming the file. Anything else is a failure —
including an ImageLoadError that only the loader's catch-all produced ("unexpected error"),
because that means an exception the loader did not expect.

By-hand run of the issue #14 families (`hostile2_seeds`, not part of the suite; 2 CPU cores,
nice 10): 12,005 byte mutants (`mutate`, numbers 100000+, 1,715 per seed, each also through
read_header and dicom_tag_rows for DICOM seeds): 9,394 rejected with ImageLoadError, 2,611
opened, 0 failures, 0 crashes, 0 hangs; slowest input 0.14 s (an RLE mutant); peak RSS 196 MB;
74 s in all.
"""
from __future__ import annotations

import faulthandler
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import ImageLoadError
from cxrviewer.core.imaging import default_display
from cxrviewer.core.io import dicom_tag_rows, load_image, read_header
from cxrviewer.core.types import XrayImage

from .conftest import FUZZ_STATS

FUZZ_EXAMPLES_ENV = "CXRVIEWER_FUZZ_EXAMPLES"
DEFAULT_EXAMPLES = 40           # mutations per seed file (heavy seeds get a third)
TIME_LIMIT_S = 30.0             # per input; generous for a busy 2-core machine at nice 19
HARD_LIMIT_S = 120.0            # past this even C code is considered hung: dump stacks, exit
INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\x00\x80", b"\xff\x7f",
               b"\x01\x00", b"\x00\x01", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff")


def examples_per_seed() -> int:
    raw = os.environ.get(FUZZ_EXAMPLES_ENV, "").strip()
    return max(1, int(raw)) if raw.isdigit() else DEFAULT_EXAMPLES


# ---------------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class Seed:
    name: str            # "real_dicom:cr_chest…", "synthetic_dicom:rle", …
    data: bytes
    suffix: str
    weight: float = 1.0  # share of the per-seed example count (big, slow files get less)

    @property
    def is_dicom(self) -> bool:
        return self.suffix == ".dcm" or self.suffix == ""

    @property
    def source(self) -> str:
        return self.name.split(":", 1)[0]


HOSTILE2_WEIGHT = 0.25          # the issue #14 families: a few mutants each in the suite


def hostile2_seeds() -> list[Seed]:
    """Loadable files of the issue #14 families (hostile2.py), to mutate towards their bugs:
    a JP2-wrapped JPEG 2000 DICOM, RLE, a progressive JPEG, a PNG with a zTXt comment, a DICOM
    with a sequence of items and a YBR_FULL header on one sample per pixel."""
    import tempfile

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from . import hostile2
    from .hostile import dicom, save

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        items = dicom()
        items.ReferencedImageSequence = Sequence([Dataset() for _ in range(40)])
        ybr = dicom((hostile2.chest_pixels() >> 4).astype(np.uint8))
        ybr.PhotometricInterpretation = "YBR_FULL"
        files = {
            "jp2_valid": (hostile2.jp2_valid(folder), ".dcm"),
            "rle_valid": (hostile2.rle_valid(folder), ".dcm"),
            "sequence_items": (save(items, folder / "items.dcm"), ".dcm"),
            "ybr_one_sample": (save(ybr, folder / "ybr.dcm"), ".dcm"),
            "png_ztxt": (hostile2.png_with_text_chunk(folder, b"zTXt", 2048), ".png"),
        }
        seeds = [Seed(f"hostile2:{key}", path.read_bytes(), suffix, HOSTILE2_WEIGHT)
                 for key, (path, suffix) in files.items()]
    for mode in ("L", "RGB"):
        data = hostile2.progressive_jpeg_bytes(96, 80, mode)
        seeds.append(Seed(f"hostile2:progressive_jpeg_{mode}", data, ".jpg", HOSTILE2_WEIGHT))
    return seeds


def stream_start(data: bytes) -> int:
    """Offset of an embedded JPEG / JPEG 2000 / JPEG-LS codestream, else 0."""
    offsets = [data.find(m) for m in (b"\xff\xd8\xff", b"\xff\x4f\xff\x51")]
    found = [o for o in offsets if o > 0]
    return min(found) if found else 0


# ---------------------------------------------------------------------------------- mutators
Mutator = Callable[[random.Random, bytearray, Seed], bytearray]


def _position(rng: random.Random, data: bytearray, seed: Seed) -> int:
    """Anywhere, but half of the time in the headers: the file's first 4 KB or a codestream's."""
    if rng.random() < 0.5:
        base = stream_start(bytes(data[:65536])) if seed.is_dicom and rng.random() < 0.5 else 0
        return min(len(data) - 1, base + rng.randrange(min(4096, max(1, len(data) - base))))
    return rng.randrange(len(data))


def flip_bits(rng, data, seed):
    for _ in range(rng.randint(1, 8)):
        data[_position(rng, data, seed)] ^= 1 << rng.randrange(8)
    return data


def random_bytes(rng, data, seed):
    for _ in range(rng.randint(1, 16)):
        data[_position(rng, data, seed)] = rng.randrange(256)
    return data


def interesting_values(rng, data, seed):
    for _ in range(rng.randint(1, 4)):
        value = rng.choice(INTERESTING)
        at = _position(rng, data, seed)
        data[at:at + len(value)] = value
    return data


def truncate(rng, data, seed):
    cut = rng.randrange(1, len(data)) if rng.random() < 0.5 else len(data) - rng.randint(1, max(1, len(data) // 20))
    return data[:max(cut, 1)]


def delete_chunk(rng, data, seed):
    at = _position(rng, data, seed)
    del data[at:at + rng.randint(1, 512)]
    return data or bytearray(b"\x00")


def duplicate_chunk(rng, data, seed):
    start = _position(rng, data, seed)
    chunk = data[start:start + rng.randint(1, 256)]
    at = _position(rng, data, seed)
    data[at:at] = chunk
    return data


def dicom_element_value(rng, data, seed):
    """Overwrite the value of a pixel-describing element (group 0028) or the transfer syntax."""
    tags = [b"\x28\x00\x10\x00", b"\x28\x00\x11\x00", b"\x28\x00\x00\x01", b"\x28\x00\x01\x01",
            b"\x28\x00\x02\x01", b"\x28\x00\x03\x01", b"\x28\x00\x02\x00", b"\x28\x00\x06\x00",
            b"\x28\x00\x04\x00", b"\x28\x00\x08\x00", b"\x28\x00\x50\x10", b"\x28\x00\x51\x10",
            b"\x28\x00\x52\x10", b"\x28\x00\x53\x10", b"\x02\x00\x10\x00", b"\xe0\x7f\x10\x00"]
    rng.shuffle(tags)
    head = bytes(data[:65536])
    for tag in tags:
        at = head.find(tag)
        if at >= 0:
            value_at = at + 8 + (4 if data[at + 4:at + 6] in (b"OB", b"OW", b"UN", b"SQ", b"UT") else 0)
            value = rng.choice(INTERESTING + (b"1 ", b"0 ", b"-1", b"99999999", b"1\\2\\3", b"MONOCHROME1 ", b"RGB "))
            data[value_at:value_at + len(value)] = value
            return data
    return random_bytes(rng, data, seed)


MUTATORS: tuple[Mutator, ...] = (flip_bits, random_bytes, interesting_values, truncate, delete_chunk,
                                 duplicate_chunk)
DICOM_MUTATORS: tuple[Mutator, ...] = MUTATORS + (dicom_element_value, dicom_element_value)


def mutate(seed: Seed, number: int) -> tuple[bytes, str]:
    """The `number`-th deterministic mutant of `seed` and a description of how it was made."""
    rng = random.Random(f"{seed.name}#{number}")
    data = bytearray(seed.data)
    steps = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutator = rng.choice(DICOM_MUTATORS if seed.is_dicom else MUTATORS)
        data = mutator(rng, data, seed)
        steps.append(mutator.__name__)
    return bytes(data), "+".join(steps)


# ---------------------------------------------------------------------------------- running
class FuzzTimeout(BaseException):
    """Raised by SIGALRM inside a load that takes too long (BaseException: nothing swallows it)."""


@contextmanager
def time_bound(seconds: float, hard_seconds: float) -> Iterator[None]:
    faulthandler.dump_traceback_later(hard_seconds, exit=True)
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    previous = None
    if use_alarm:
        def on_alarm(signum, frame):  # noqa: ARG001
            raise FuzzTimeout(f"no result after {seconds:.0f} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


def check_image(image: XrayImage) -> str | None:
    """What is wrong with a loaded image (None: it is fine and displayable)."""
    pixels = image.pixels
    if pixels.ndim != 2 or pixels.size == 0 or pixels.dtype != np.float32:
        return f"bad pixel array {pixels.shape} {pixels.dtype}"
    if not np.isfinite(pixels).all():
        return "non-finite pixels"
    window = image.default_window
    if not (np.isfinite(window.center) and np.isfinite(window.width) and window.width > 0):
        return f"bad default window {window}"
    if any(not (np.isfinite(p.window.center) and np.isfinite(p.window.width) and p.window.width > 0)
           for p in image.presets):
        return "bad preset window"
    if not 0 <= image.frame_index < image.frame_count:
        return f"frame {image.frame_index} of {image.frame_count}"
    shown = default_display(image)
    if shown.shape != pixels.shape or shown.dtype != np.uint8:
        return f"display is {shown.shape} {shown.dtype}"
    if not all(isinstance(v, str) for v in image.metadata.values()):
        return "metadata values that are not text"
    return None


class FuzzRunner:
    """Loads inputs one at a time from a fixed file, checks the outcome, keeps the counts."""

    def __init__(self, artifacts: Path, record: bool = True) -> None:
        self.artifacts = artifacts
        self.record = record       # False: keep these inputs out of the session's fuzz counts
        artifacts.mkdir(parents=True, exist_ok=True)
        self.tried = 0
        self.rejected = 0
        self.opened = 0
        self.failures: list[str] = []

    def run(self, data: bytes, seed: Seed, how: str) -> None:
        target = self.artifacts / f"current_input{seed.suffix}"
        (self.artifacts / "current_input.txt").write_text(f"{seed.name} {how}\n", encoding="utf-8")
        target.write_bytes(data)
        started = time.perf_counter()
        problem = None
        try:
            with warnings.catch_warnings(), time_bound(TIME_LIMIT_S, HARD_LIMIT_S):
                warnings.simplefilter("ignore")
                problem = self._load_and_check(target, seed)
        except FuzzTimeout as exc:
            problem = f"hang: {exc}"
        elapsed = time.perf_counter() - started
        self._count(seed, problem, elapsed, how)
        if problem:
            keep = self.artifacts / f"failure_{len(self.failures)}{seed.suffix}"
            keep.write_bytes(data)
            self.failures.append(f"{seed.name} [{how}] -> {problem} (input saved as {keep})")

    def _load_and_check(self, target: Path, seed: Seed) -> str | None:
        try:
            image = load_image(target)
        except ImageLoadError as exc:
            self.rejected += 1
            if not str(exc).startswith(f"{target.name}: ") or not exc.reason.strip():
                return f"message does not name the file: {exc}"
            if exc.reason.startswith("unexpected error"):
                return f"loader caught an unexpected exception: {exc.reason}"
        except (FuzzTimeout, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - this is what the fuzzer is looking for
            return f"{type(exc).__name__} escaped load_image: {exc}"
        else:
            self.opened += 1
            problem = check_image(image)
            if problem:
                return f"loaded but {problem}"
        if seed.is_dicom:   # the study browser and the tag dock read the same file
            for reader in (read_header, dicom_tag_rows):
                try:
                    reader(target)
                except ImageLoadError:
                    pass
                except (FuzzTimeout, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # noqa: BLE001
                    return f"{type(exc).__name__} escaped {reader.__name__}: {exc}"
        return None

    def _count(self, seed: Seed, problem: str | None, elapsed: float, how: str) -> None:
        self.tried += 1
        if not self.record:
            return
        FUZZ_STATS.tried += 1
        FUZZ_STATS.by_source[seed.source] = FUZZ_STATS.by_source.get(seed.source, 0) + 1
        if elapsed > FUZZ_STATS.slowest:
            FUZZ_STATS.slowest = elapsed
            FUZZ_STATS.slowest_input = f"{seed.name} [{how}]"
        if problem:
            FUZZ_STATS.failures.append(f"{seed.name} [{how}] -> {problem}")

    def finish(self) -> None:
        if not self.record:
            return
        FUZZ_STATS.rejected += self.rejected
        FUZZ_STATS.opened += self.opened

    def summary(self, what: str) -> str:
        return (f"{what}: {self.tried} inputs tried, {self.rejected} rejected with ImageLoadError, "
                f"{self.opened} opened, {len(self.failures)} failures, 0 crashes")


def print_line(text: str) -> None:
    """Shown in the terminal summary at the end of the run (pytest captures output before)."""
    FUZZ_STATS.lines.append(text)
