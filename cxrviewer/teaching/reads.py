"""A trainee's reads ("calls") before the AI reveal, stored locally; agreement and calibration.

Read-first mode asks the trainee for a call (one of the model's classes, lower-cased, or
"other"), a confidence 0–100 and optionally a point of concern before the model's result is
shown. Agreement with the model is scored on the model's CALL (`core.model_call`: the card's
operating threshold), never on the arg-max class, so the reveal, My Reads and the AI panel
say the same thing. Reading an image again replaces its current read; the earlier one is
kept as history (`superseded_by`) and no longer counts in the summary.
A read of an image the out-of-distribution gate flagged as unlike the model's training data
(`Prediction.outside_training_data`) carries the flag (`outside_training_data`): the model's
answer there is a guess, so every figure about the model (agreement with it, its accuracy against
known labels) leaves such reads out and says how many (`ModelWithheld.model_withheld`, the one
rule, shared with the practice score sheet),
while the trainee's own accuracy against known labels and calibration still count them.
`compare_read` builds what the reveal shows; `ReadStore` keeps each read in SQLite in the
user data folder so "My reads" can show agreement with the model, with the known label of a
labelled folder, and the trainee's own calibration curve.

What is stored, and what is not: the image is identified by the SHA-256 of its file bytes
(plus the frame index) — never its path, file name, or any DICOM header value — so the
database holds no patient data. The schema version lives in SQLite's `user_version`.

The store's folder is $CXRVIEWER_DATA_DIR, else platformdirs' user data dir for cxrviewer.
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import CxrError
from cxrviewer.core.model_call import ModelCall, model_call, top_call
from cxrviewer.core.xai.overlay import normalise_cam, upsample_cam
from cxrviewer.teaching.rates import Rate

DATA_DIR_ENV = "CXRVIEWER_DATA_DIR"
STORE_FILENAME = "reads.sqlite3"
SCHEMA_VERSION = 3   # 2 → 3: outside_training_data (added with a default, old reads kept)

CALLS: tuple[str, ...] = ("normal", "bacterial", "viral", "other")   # the choices when no model is known
CALL_TITLES: dict[str, str] = {"normal": "Normal", "bacterial": "Bacterial", "viral": "Viral", "other": "Other",
                               "covid-19": "COVID-19", "pneumonia": "Pneumonia"}
DEFAULT_HOT_THRESHOLD = 0.5   # an explicit level on the normalised map (tests, old callers)
HOT_MASS_SHARE = 0.5          # the hot region: the smallest set of pixels holding this share of the map's heat
HOT_REGION_RULE = ("the hot region is the smallest part of the image that holds half of the map's heat "
                   "(hottest pixels first)")
HEAT_MAX_SIDE = 1024          # as the viewer's overlay: maps are upsampled to at most this size
_CALL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9 _+-]{0,31}$")


def call_for_label(label: str) -> str:
    """The read-first call that names a model class, e.g. "COVID-19" → "covid-19"."""
    return label.strip().lower()


def call_title(call: str) -> str:
    """The button text of a call ("covid-19" → "COVID-19", "normal" → "Normal")."""
    return CALL_TITLES.get(call, call.upper() if len(call) <= 4 else call.capitalize())


def calls_for_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Read-first choices for a model: its classes (in card order), then "other"."""
    calls = [call_for_label(label) for label in labels if call_for_label(label) != "other"]
    return tuple(dict.fromkeys(calls)) + ("other",) if calls else CALLS

# Which calls agree with a model or folder label. COVID-19 is a viral pneumonia; a
# two-class PNEUMONIA label is matched by either pneumonia call. Unknown labels match "other".
_LABEL_CALLS: dict[str, frozenset[str]] = {
    "NORMAL": frozenset({"normal"}),
    "BACTERIAL": frozenset({"bacterial"}),
    "VIRAL": frozenset({"viral"}),
    "COVID-19": frozenset({"covid-19", "viral"}),
    "COVID": frozenset({"covid-19", "viral"}),
    "PNEUMONIA": frozenset({"bacterial", "viral"}),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ReadStoreError(CxrError):
    """The reads database could not be opened, read or written; the message names the file."""


def calls_agreeing_with(label: str) -> frozenset[str]:
    """The trainee calls that count as agreeing with a model or folder label."""
    return _LABEL_CALLS.get(label.strip().upper(), frozenset({"other"}))


def call_agrees(call: str, label: str | None) -> bool | None:
    """True/False when `label` is known, None when there is nothing to compare with.

    A call that names a class agrees with that class; beyond that the folder-label mapping
    applies (a two-class PNEUMONIA label is matched by either subtype, COVID-19 by "viral").
    """
    if not label:
        return None
    if call == call_for_label(label):
        return True
    return call in calls_agreeing_with(label)


def call_agrees_with_model(call: str, model_label: str | None) -> bool | None:
    """Agreement with the model's call: the trainee chose from the model's own classes, so exactly that class."""
    if not model_label:
        return None
    return call == call_for_label(model_label)


def _model_call(labels: Sequence[str], probabilities: Sequence[float], threshold: float | None) -> ModelCall | None:
    """The model's call; a read stored before the threshold was recorded (schema 1) gets the top class."""
    if not probabilities:
        return None
    return model_call(labels, probabilities, threshold) if threshold is not None else top_call(labels, probabilities)


@dataclass(frozen=True)
class ReadCall:
    """What the trainee decided before the reveal. `point` is (x = column, y = row) in image pixels."""

    call: str
    confidence: int
    point: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.call, str) or not _CALL_PATTERN.match(self.call):
            raise ValueError(f"unknown call {self.call!r}; choose a class of the model or 'other'")
        if not 0 <= int(self.confidence) <= 100:
            raise ValueError(f"confidence must be 0–100, got {self.confidence}")
        object.__setattr__(self, "confidence", int(self.confidence))
        if self.point is not None:
            x, y = (float(v) for v in self.point)
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError("the marked point must have finite coordinates")
            object.__setattr__(self, "point", (x, y))

    @property
    def title(self) -> str:
        return call_title(self.call)


# ----------------------------------------------------------------------------- reveal

def heat_at_point(
    cam: np.ndarray,
    image_shape: tuple[int, int],
    point: tuple[float, float],
    mode: str = "per_image",
    absolute_max: float | None = None,
    max_side: int = HEAT_MAX_SIDE,
) -> float | None:
    """The normalised map value (0–1) at image pixel `point`, upsampled as the overlay draws it.

    The map is upsampled (cubic, like the overlay) to the image size capped at `max_side`
    on the long side, and read at the point's position scaled to that grid. None when the
    point lies outside the image.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    x, y = float(point[0]), float(point[1])
    if not (0 <= x < width and 0 <= y < height):
        return None
    scale = min(1.0, max_side / max(height, width))
    rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
    upsampled = upsample_cam(normalise_cam(cam, mode, absolute_max), (rows, cols))
    row = min(int(y * rows / height), rows - 1)
    col = min(int(x * cols / width), cols - 1)
    return float(upsampled[row, col])


def hot_level(
    cam: np.ndarray,
    image_shape: tuple[int, int],
    mode: str = "per_image",
    absolute_max: float | None = None,
    mass_share: float = HOT_MASS_SHARE,
    max_side: int = HEAT_MAX_SIDE,
) -> tuple[float, float]:
    """(level, area): the hot region is where the normalised map is ≥ `level`.

    `level` is chosen so that the region is the smallest set of pixels (hottest first) whose
    heat adds up to `mass_share` of the map's total heat, on the same upsampled grid as
    `heat_at_point`; `area` is the share of the image it covers. Unlike a display threshold,
    this does not grow when the map is flat: a map with a clear focus gives a small region.
    A map without heat gives (inf, 0): no point is inside.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    scale = min(1.0, max_side / max(height, width))
    rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
    values = np.sort(np.clip(upsample_cam(normalise_cam(cam, mode, absolute_max), (rows, cols)), 0.0, None),
                     axis=None)[::-1]
    total = float(values.sum())
    if not total > 0:
        return float("inf"), 0.0
    count = int(np.searchsorted(np.cumsum(values), mass_share * total)) + 1
    count = min(count, values.size)
    return float(values[count - 1]), count / values.size


class ModelWithheld:
    """The one rule for every figure about the model, for a read or a practice case result.

    `outside_training_data`: the OOD gate flagged the image, so the viewer withheld the model's
    call. A withheld call does not count for the model (agreement with it, its accuracy against the
    known label); the trainee's own figures ignore the flag. Used by `ReadRecord` (My Reads) and
    `teaching.practice.CaseResult` (the practice score sheet).
    """

    outside_training_data: bool

    @property
    def model_withheld(self) -> bool:
        return self.outside_training_data


def scored_for_model(outcomes: Iterable[tuple[ModelWithheld, bool | None]]) -> tuple[list[bool], int]:
    """(outcomes the model is scored on, how many were left out as withheld); None outcomes are not scored."""
    scored = [(item, ok) for item, ok in outcomes if ok is not None]
    counted = [bool(ok) for item, ok in scored if not item.model_withheld]
    return counted, len(scored) - len(counted)


def flagged_left_out(n_flagged: int, noun: str) -> str:
    """ "2 flagged reads not counted" (`noun` "read" or "case") for a figure about the model; "" for none."""
    return f"{n_flagged} flagged {noun}{'s' if n_flagged != 1 else ''} not counted" if n_flagged else ""


class _ModelCallOf:
    """The model's call on a result's labels and probabilities, for the dataclasses below."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    operating_threshold: float | None

    @property
    def model_call(self) -> ModelCall | None:
        """The model's decision (`core.model_call`), the one the panel and the gate show."""
        return _model_call(self.labels, self.probabilities, self.operating_threshold)

    @property
    def model_call_label(self) -> str | None:
        call = self.model_call
        return call.label if call is not None else None


@dataclass(frozen=True)
class RevealComparison(_ModelCallOf):
    """The trainee's call beside the model's result, as the reveal shows it."""

    call: ReadCall
    model_name: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    hot_threshold: float
    point_heat: float | None = None          # normalised map value at the marked point
    known_label: str | None = None
    operating_threshold: float | None = None  # the card's; None: agreement on the top class
    hot_area: float | None = None            # share of the image in the hot region (mass rule)
    outside_training_data: bool = False      # the OOD gate flagged the image: the model's answer is a guess

    @property
    def top_index(self) -> int:
        return int(np.argmax(self.probabilities)) if self.probabilities else -1

    @property
    def model_top_label(self) -> str | None:
        return self.labels[self.top_index] if self.probabilities else None

    @property
    def model_top_probability(self) -> float | None:
        return float(self.probabilities[self.top_index]) if self.probabilities else None

    @property
    def agrees_with_model(self) -> bool | None:
        return call_agrees_with_model(self.call.call, self.model_call_label)

    @property
    def point_in_hot_region(self) -> bool | None:
        if self.point_heat is None:
            return None
        return self.point_heat >= self.hot_threshold

    @property
    def agrees_with_known_label(self) -> bool | None:
        return call_agrees(self.call.call, self.known_label)


def compare_read(
    call: ReadCall,
    model_name: str,
    labels: Sequence[str],
    probabilities: Sequence[float],
    cam: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
    hot_threshold: float | None = DEFAULT_HOT_THRESHOLD,
    known_label: str | None = None,
    mode: str = "per_image",
    absolute_max: float | None = None,
    operating_threshold: float | None = None,
    outside_training_data: bool = False,
) -> RevealComparison:
    """Everything the reveal shows; the point's heat needs the raw CAM and the image shape.

    `hot_threshold` None: the hot region follows the mass rule (`hot_level`, HOT_REGION_RULE),
    which the viewer uses; a number is a fixed level on the normalised map.
    """
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probabilities")
    heat = None
    area = None
    if call.point is not None and cam is not None and image_shape is not None:
        heat = heat_at_point(cam, image_shape, call.point, mode, absolute_max)
        if hot_threshold is None:
            hot_threshold, area = hot_level(cam, image_shape, mode, absolute_max)
    if hot_threshold is None:
        hot_threshold = float("inf")
    return RevealComparison(
        call=call,
        model_name=model_name,
        labels=tuple(str(label) for label in labels),
        probabilities=tuple(float(p) for p in probabilities),
        hot_threshold=float(hot_threshold),
        point_heat=heat,
        known_label=known_label,
        operating_threshold=None if operating_threshold is None else float(operating_threshold),
        hot_area=area,
        outside_training_data=bool(outside_training_data),
    )


# ----------------------------------------------------------------------------- records

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ReadRecord(_ModelCallOf, ModelWithheld):
    """One stored read. Holds a content hash of the image, never its path or header values."""

    image_sha256: str
    call: str
    confidence: int
    frame_index: int = 0
    point: tuple[float, float] | None = None
    model_name: str = ""
    labels: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    point_heat: float | None = None
    point_in_hot_region: bool | None = None
    known_label: str | None = None
    created: str = ""
    id: int | None = None
    operating_threshold: float | None = None   # the card's, at the time of the read (None: schema 1)
    superseded_by: int | None = None           # a later read of the same image replaced this one
    outside_training_data: bool = False        # flagged by the OOD gate: left out of agreement with the model

    def __post_init__(self) -> None:
        ReadCall(self.call, self.confidence, self.point)   # validates call, confidence, point
        sha = self.image_sha256.strip().lower()
        if not _SHA256.match(sha):
            raise ValueError("a read needs the image's SHA-256 content hash (64 hex digits)")
        object.__setattr__(self, "image_sha256", sha)
        if len(self.labels) != len(self.probabilities):
            raise ValueError(f"{len(self.labels)} labels but {len(self.probabilities)} probabilities")

    @classmethod
    def from_comparison(
        cls, comparison: RevealComparison, image_sha256: str, frame_index: int = 0, created: str = ""
    ) -> ReadRecord:
        return cls(
            image_sha256=image_sha256,
            call=comparison.call.call,
            confidence=comparison.call.confidence,
            frame_index=frame_index,
            point=comparison.call.point,
            model_name=comparison.model_name,
            labels=comparison.labels,
            probabilities=comparison.probabilities,
            point_heat=comparison.point_heat,
            point_in_hot_region=comparison.point_in_hot_region,
            known_label=comparison.known_label,
            created=created or _now(),
            operating_threshold=comparison.operating_threshold,
            outside_training_data=comparison.outside_training_data,
        )

    @property
    def model_top_label(self) -> str | None:
        return self.labels[int(np.argmax(self.probabilities))] if self.probabilities else None

    @property
    def model_top_probability(self) -> float | None:
        return float(max(self.probabilities)) if self.probabilities else None

    @property
    def agrees_with_model(self) -> bool | None:
        return call_agrees_with_model(self.call, self.model_call_label)

    @property
    def agrees_with_known_label(self) -> bool | None:
        return call_agrees(self.call, self.known_label)

    @property
    def model_agrees_with_known_label(self) -> bool | None:
        """Whether the model's call matches the known label (same mapping as for calls)."""
        top, label = self.model_call_label, self.known_label
        if top is None or not label:
            return None
        return bool(calls_agreeing_with(top) & calls_agreeing_with(label))


# ----------------------------------------------------------------------------- summary

@dataclass(frozen=True)
class ReadSummary:
    n_reads: int
    n_with_model: int
    n_agree_model: int
    n_with_label: int
    n_agree_label: int
    n_model_with_label: int
    n_model_agree_label: int
    n_flagged: int = 0              # reads with a model call left out of agreement: the call was withheld (OOD)
    n_model_label_flagged: int = 0  # labelled reads left out of the model's accuracy for the same reason

    model_agreement = Rate("n_agree_model", over="n_with_model")
    label_agreement = Rate("n_agree_label", over="n_with_label")    # the trainee's accuracy against the labels
    model_label_agreement = Rate("n_model_agree_label", over="n_model_with_label")   # the model's, unflagged only


def summarise(records: Iterable[ReadRecord]) -> ReadSummary:
    records = list(records)
    with_model, n_flagged = scored_for_model((r, r.agrees_with_model) for r in records)
    model_label, n_model_label_flagged = scored_for_model((r, r.model_agrees_with_known_label) for r in records)
    with_label = [r.agrees_with_known_label for r in records if r.agrees_with_known_label is not None]
    return ReadSummary(
        n_reads=len(records),
        n_with_model=len(with_model),
        n_agree_model=sum(with_model),
        n_with_label=len(with_label),
        n_agree_label=sum(with_label),
        n_model_with_label=len(model_label),
        n_model_agree_label=sum(model_label),
        n_flagged=n_flagged,
        n_model_label_flagged=n_model_label_flagged,
    )


@dataclass(frozen=True)
class CalibrationBin:
    """Reads whose confidence fell in [low, high] (percent): mean confidence vs. fraction correct."""

    low: float
    high: float
    count: int
    mean_confidence: float     # 0–1
    accuracy: float            # 0–1, against the known label


def calibration_curve(records: Iterable[ReadRecord], bins: int = 5) -> tuple[CalibrationBin, ...]:
    """The trainee's reliability diagram against known labels (empty bins are left out).

    Only reads of images with a known label count: calibration needs the truth, and the
    model's opinion is not the truth.
    """
    if bins < 1:
        raise ValueError("need at least one bin")
    grouped: dict[int, list[tuple[int, bool]]] = {}
    for r in records:
        if r.agrees_with_known_label is not None:
            index = min(r.confidence * bins // 100, bins - 1)      # integer percent: no float edge cases
            grouped.setdefault(index, []).append((r.confidence, bool(r.agrees_with_known_label)))
    out: list[CalibrationBin] = []
    for index in sorted(grouped):
        inside = grouped[index]
        out.append(CalibrationBin(
            low=index * 100.0 / bins, high=(index + 1) * 100.0 / bins, count=len(inside),
            mean_confidence=float(np.mean([c for c, _ in inside])) / 100.0,
            accuracy=float(np.mean([ok for _, ok in inside])),
        ))
    return tuple(out)


def brier_score(records: Iterable[ReadRecord]) -> float | None:
    """Mean (confidence − correct)² over labelled reads: 0 is perfect, 0.25 is a coin at 50 %."""
    pairs = [(r.confidence / 100.0, float(bool(r.agrees_with_known_label))) for r in records
             if r.agrees_with_known_label is not None]
    if not pairs:
        return None
    return float(np.mean([(c - ok) ** 2 for c, ok in pairs]))


# ----------------------------------------------------------------------------- storage

def data_dir() -> Path:
    """$CXRVIEWER_DATA_DIR, else the platform's per-user data folder for cxrviewer."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("cxrviewer", "cxrviewer"))


def default_store_path() -> Path:
    return data_dir() / STORE_FILENAME


_SCHEMA = """
CREATE TABLE IF NOT EXISTS reads (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    created             TEXT    NOT NULL,
    image_sha256        TEXT    NOT NULL,
    frame_index         INTEGER NOT NULL DEFAULT 0,
    call                TEXT    NOT NULL CHECK (length(call) BETWEEN 1 AND 32),
    confidence          INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    point_x             REAL,
    point_y             REAL,
    model_name          TEXT    NOT NULL DEFAULT '',
    model_labels        TEXT    NOT NULL DEFAULT '[]',
    model_probabilities TEXT    NOT NULL DEFAULT '[]',
    point_heat          REAL,
    point_in_hot_region INTEGER,
    known_label         TEXT,
    operating_threshold REAL,
    superseded_by       INTEGER,
    outside_training_data INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reads_by_image ON reads (image_sha256);
"""
_V1_COLUMNS = (
    "id, created, image_sha256, frame_index, call, confidence, point_x, point_y, model_name, "
    "model_labels, model_probabilities, point_heat, point_in_hot_region, known_label"
)
_COLUMNS = _V1_COLUMNS + ", operating_threshold, superseded_by, outside_training_data"


class ReadStore:
    """The trainee's reads in one SQLite file. Use from one thread (the GUI thread)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path))
        except (OSError, sqlite3.Error) as exc:
            raise ReadStoreError(f"{self.path}: cannot open the reads database ({exc})") from exc
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ReadStoreError(f"{self.path}: not a usable reads database ({exc})") from exc

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            self._db.close()
            raise ReadStoreError(
                f"{self.path}: written by a newer cxrviewer (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        if version == 1:   # schema 1 fixed the four calls in a CHECK: rebuild the table, keep every read
            with self._db:
                self._db.execute("ALTER TABLE reads RENAME TO reads_v1")
                self._db.execute("DROP INDEX IF EXISTS reads_by_image")
                self._db.executescript(_SCHEMA)
                self._db.execute(f"INSERT INTO reads ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM reads_v1")
                self._db.execute("DROP TABLE reads_v1")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version == 2:   # schema 3 added the OOD flag: every earlier read was unflagged
            with self._db:
                self._db.execute("ALTER TABLE reads ADD COLUMN outside_training_data INTEGER NOT NULL DEFAULT 0")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def add(self, record: ReadRecord) -> ReadRecord:
        """Store `record` as the current read of its image (and frame); returns it with its id.

        An earlier current read of the same image is kept as history: it gets `superseded_by`
        set to the new read's id and no longer appears in `records()`.
        """
        record = replace(record, created=record.created or _now(), superseded_by=None)
        point_x, point_y = record.point if record.point is not None else (None, None)
        hot = None if record.point_in_hot_region is None else int(record.point_in_hot_region)
        try:
            with self._db:
                cursor = self._db.execute(
                    "INSERT INTO reads (created, image_sha256, frame_index, call, confidence, point_x, "
                    "point_y, model_name, model_labels, model_probabilities, point_heat, "
                    "point_in_hot_region, known_label, operating_threshold, outside_training_data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.created, record.image_sha256, int(record.frame_index), record.call,
                     int(record.confidence), point_x, point_y, record.model_name,
                     json.dumps(list(record.labels)), json.dumps(list(record.probabilities)),
                     record.point_heat, hot, record.known_label, record.operating_threshold,
                     int(record.outside_training_data)),
                )
                self._db.execute(
                    "UPDATE reads SET superseded_by = ? WHERE image_sha256 = ? AND frame_index = ? "
                    "AND superseded_by IS NULL AND id != ?",
                    (int(cursor.lastrowid), record.image_sha256, int(record.frame_index), int(cursor.lastrowid)))
        except sqlite3.Error as exc:
            raise ReadStoreError(f"{self.path}: could not save the read ({exc})") from exc
        return replace(record, id=int(cursor.lastrowid))

    def records(self, model_name: str | None = None, history: bool = False) -> list[ReadRecord]:
        """The current read of every image, oldest first (optionally of one model; `history`: all reads)."""
        query = f"SELECT {_COLUMNS} FROM reads WHERE 1 = 1"
        args: tuple = ()
        if not history:
            query += " AND superseded_by IS NULL"
        if model_name is not None:
            query += " AND model_name = ?"
            args = (model_name,)
        return self._select(query + " ORDER BY id", args)

    def records_for_image(self, image_sha256: str) -> list[ReadRecord]:
        """Every read of one image, current and earlier ones, oldest first."""
        return self._select(f"SELECT {_COLUMNS} FROM reads WHERE image_sha256 = ? ORDER BY id",
                            (image_sha256.strip().lower(),))

    def delete(self, record_id: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM reads WHERE id = ?", (int(record_id),))

    def clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM reads")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReadStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, query: str, args: tuple) -> list[ReadRecord]:
        try:
            rows = self._db.execute(query, args).fetchall()
        except sqlite3.Error as exc:
            raise ReadStoreError(f"{self.path}: could not read the reads ({exc})") from exc
        out = []
        for (id_, created, sha, frame, call, confidence, px, py, model, labels, probs, heat, hot,
             label, threshold, superseded, outside) in rows:
            out.append(ReadRecord(
                id=int(id_), created=str(created), image_sha256=str(sha), frame_index=int(frame),
                call=str(call), confidence=int(confidence),
                point=None if px is None or py is None else (float(px), float(py)),
                model_name=str(model), labels=tuple(json.loads(labels)),
                probabilities=tuple(float(p) for p in json.loads(probs)),
                point_heat=None if heat is None else float(heat),
                point_in_hot_region=None if hot is None else bool(hot),
                known_label=label,
                operating_threshold=None if threshold is None else float(threshold),
                superseded_by=None if superseded is None else int(superseded),
                outside_training_data=bool(outside),
            ))
        return out
