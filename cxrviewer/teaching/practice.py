"""Rapid-reporting practice packets: N labelled cases, read against the clock, then a score sheet.

A packet is drawn from a labelled source — class folders (`NORMAL/`, `PNEUMONIA/` with Kermany
file names `personN_bacteria_M.jpeg` / `personN_virus_M.jpeg`, …, see `teaching.known_label`) or
a manifest CSV with `path,label` columns — as a seeded, recorded random sample (balanced
normal/abnormal on request) in a seeded random order. Everything here is Qt-free:

* `labelled_images` — the pool: every image of the source with its known label.
* `select_cases` — the sample and its order; the same pool, size and seed give the same packet.
* `PacketClock` — elapsed time with pauses (the clock survives a restart paused).
* `PacketState` — the whole packet (spec, cases, results, position, clock) as a frozen value
  with `to_json` / `from_json`; `save_state` / `load_state` keep the unfinished one in the user
  data folder (`teaching.reads.data_dir`, so $CXRVIEWER_DATA_DIR is honoured).
* `score_packet` — accuracy, sensitivity and specificity (abnormal = not NORMAL) against the
  known labels, agreement with the model's call, the discordant cases, time per case and the
  calibration of the trainee's confidence; `score_csv` and `write_score_pdf` export it. A case
  whose image the OOD gate flagged (`CaseResult.outside_training_data`: the viewer withheld the
  model's call) is left out of every figure about the model and counted apart, by the same rule
  as My Reads (`teaching.reads.ModelWithheld`); the trainee's own figures count every case.
* `stage_cases` — copies of the case files under neutral names (`case-07.jpeg`), so neither a
  folder nor a Kermany file name gives the answer away while the case is read.

Scoring is binary, as in a rapid-reporting exam: a case is called normal or abnormal (any
call other than "normal" is abnormal); the exact class is reported beside it.
"""
from __future__ import annotations

import csv
import io
import json
import math
import random
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cxrviewer.core.errors import CxrError
from cxrviewer.core.labels import folder_label
from cxrviewer.teaching.known_label import known_label
from cxrviewer.teaching.pages import save_page
from cxrviewer.teaching.rates import Rate
from cxrviewer.teaching.reads import ModelWithheld, flagged_left_out, scored_for_model

PACKET_FORMAT = 1
STATE_FILENAME = "practice_packet.json"        # the unfinished packet, offered for resuming
LAST_FILENAME = "practice_last_packet.json"    # the last finished one (its score sheet)
STAGING_DIRNAME = "practice_cases"
DEFAULT_CASES = 30
DEFAULT_MINUTES = 35
NORMAL = "NORMAL"
REVEAL_EACH = "each"     # the AI result is shown after each call
REVEAL_END = "end"       # the AI result is shown only on the score sheet
REVEALS = (REVEAL_EACH, REVEAL_END)
CONFIDENCE_BINS = 5


class PracticeError(CxrError):
    """A packet could not be built, read or saved; the message says which file and why."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def is_abnormal_label(label: str) -> bool:
    """A known or model label is abnormal unless it is NORMAL."""
    return label.strip().upper() != NORMAL


def is_abnormal_call(call: str) -> bool:
    """A trainee call ("normal", "bacterial", "other", …) is abnormal unless it is "normal"."""
    return call.strip().lower() != "normal"


# ============================================================================ the pool

@dataclass(frozen=True)
class LabelledImage:
    path: str
    label: str


def labelled_images_in_folder(folder: str | Path) -> tuple[LabelledImage, ...]:
    """Every image under `folder` that has a known label (class folder, Kermany name, manifest.csv)."""
    from cxrviewer.core.io import find_images

    folder = Path(folder)
    if not folder.is_dir():
        raise PracticeError(f"{folder}: not a folder")
    out: list[LabelledImage] = []
    for path in find_images([folder]):
        label = known_label(path)
        if label is not None:
            out.append(LabelledImage(str(path.resolve()), label.label))
    return tuple(out)


def labelled_images_in_manifest(manifest: str | Path) -> tuple[LabelledImage, ...]:
    """The rows of a `path,label` CSV whose file exists (relative paths from the CSV's folder)."""
    manifest = Path(manifest)
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = {name.strip().lower(): name for name in (reader.fieldnames or [])}
            if not {"path", "label"} <= set(fields):
                raise PracticeError(f"{manifest.name}: a manifest needs the columns path and label")
            out: list[LabelledImage] = []
            seen: set[str] = set()
            for row in reader:
                raw = (row.get(fields["path"]) or "").strip()
                label = (row.get(fields["label"]) or "").strip()
                if not raw or not label:
                    continue
                path = Path(raw)
                if not path.is_absolute():
                    path = manifest.parent / path
                resolved = str(path.resolve())
                if resolved in seen or not path.is_file():
                    continue
                seen.add(resolved)
                out.append(LabelledImage(resolved, folder_label(label) or label))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PracticeError(f"{manifest.name}: could not be read ({exc})") from exc
    return tuple(out)


def labelled_images(source: str | Path) -> tuple[LabelledImage, ...]:
    """The pool of a source: a folder, or a manifest CSV file."""
    source = Path(source)
    if source.is_file():
        return labelled_images_in_manifest(source)
    return labelled_images_in_folder(source)


def pool_counts(pool: Iterable[LabelledImage]) -> tuple[int, int]:
    """(normal, abnormal) images in a pool."""
    normal = abnormal = 0
    for item in pool:
        if is_abnormal_label(item.label):
            abnormal += 1
        else:
            normal += 1
    return normal, abnormal


# ============================================================================ the packet

@dataclass(frozen=True)
class PacketSpec:
    """What the trainee asked for. `time_limit_s` None: untimed."""

    source: str
    n_cases: int = DEFAULT_CASES
    balanced: bool = True
    time_limit_s: float | None = DEFAULT_MINUTES * 60.0
    reveal: str = REVEAL_EACH
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.n_cases) < 1:
            raise ValueError(f"a packet needs at least one case, not {self.n_cases}")
        if self.time_limit_s is not None and not float(self.time_limit_s) > 0:
            raise ValueError(f"the time limit must be positive, not {self.time_limit_s}")
        if self.reveal not in REVEALS:
            raise ValueError(f"reveal must be one of {REVEALS}, not {self.reveal!r}")
        object.__setattr__(self, "n_cases", int(self.n_cases))
        object.__setattr__(self, "seed", int(self.seed))


def random_seed() -> int:
    return secrets.randbelow(2**31 - 1) + 1


@dataclass(frozen=True)
class Case:
    """One case of the packet: its position (1-based), the original file and its known label."""

    number: int
    path: str
    label: str

    @property
    def abnormal(self) -> bool:
        return is_abnormal_label(self.label)


@dataclass(frozen=True)
class Selection:
    cases: tuple[Case, ...]
    note: str = ""      # e.g. why the packet is smaller or not balanced


def select_cases(pool: Sequence[LabelledImage], n_cases: int, balanced: bool, seed: int) -> Selection:
    """A seeded sample of `n_cases` from `pool` in a seeded random order.

    Balanced: half normal (rounded down), half abnormal; when one side runs short the other
    fills the packet, and the note says so. The pool is sorted by path first, so the listing
    order of the folder does not change the packet.
    """
    rng = random.Random(int(seed))
    ordered = sorted(pool, key=lambda item: item.path)
    n = min(int(n_cases), len(ordered))
    notes: list[str] = []
    if n < n_cases:
        notes.append(f"only {len(ordered)} labelled images: the packet has {n} cases")
    if balanced:
        normal = [item for item in ordered if not is_abnormal_label(item.label)]
        abnormal = [item for item in ordered if is_abnormal_label(item.label)]
        want_normal = n // 2
        want_abnormal = n - want_normal
        if len(normal) < want_normal:
            want_normal = len(normal)
            want_abnormal = n - want_normal
            notes.append(f"only {len(normal)} normal images: not balanced")
        elif len(abnormal) < want_abnormal:
            want_abnormal = len(abnormal)
            want_normal = n - want_abnormal
            notes.append(f"only {len(abnormal)} abnormal images: not balanced")
        chosen = rng.sample(normal, want_normal) + rng.sample(abnormal, want_abnormal)
    else:
        chosen = rng.sample(ordered, n)
    rng.shuffle(chosen)
    cases = tuple(Case(number, item.path, item.label) for number, item in enumerate(chosen, 1))
    return Selection(cases, "; ".join(notes))


# ============================================================================ the clock

@dataclass(frozen=True)
class PacketClock:
    """Elapsed seconds with pauses. `running_since`: the time source's value when last started."""

    elapsed_before_s: float = 0.0
    running_since: float | None = None

    @property
    def running(self) -> bool:
        return self.running_since is not None

    def elapsed(self, now: float) -> float:
        if self.running_since is None:
            return self.elapsed_before_s
        return self.elapsed_before_s + max(0.0, now - self.running_since)

    def start(self, now: float) -> PacketClock:
        return self if self.running else replace(self, running_since=now)

    def pause(self, now: float) -> PacketClock:
        return PacketClock(self.elapsed(now), None) if self.running else self


@dataclass(frozen=True)
class CaseResult(ModelWithheld):
    """The trainee's call on one case, the time it took and the model's call (when known)."""

    number: int
    call: str
    confidence: int            # 0–100
    seconds: float             # from the case being shown to the call (pauses excluded)
    model_label: str | None = None
    model_name: str = ""
    outside_training_data: bool = False   # the OOD gate flagged the image: the model's call was withheld

    @property
    def abnormal(self) -> bool:
        return is_abnormal_call(self.call)


@dataclass(frozen=True, kw_only=True)
class PacketState:
    """A packet in progress (or finished): everything needed to carry on after a restart.

    Keyword-only: eleven fields, several of the same type, are too many to pass by position."""

    packet_id: str
    created: str
    spec: PacketSpec
    cases: tuple[Case, ...]
    results: tuple[CaseResult, ...] = ()
    current: int = 0                  # index into `cases` of the case being read
    case_started_s: float = 0.0       # the packet's elapsed time when that case was shown
    clock: PacketClock = field(default_factory=PacketClock)
    finished: bool = False
    finish_reason: str = ""           # "complete", "time" or "stopped"
    note: str = ""

    # ---------------------------------------------------------------- queries
    @property
    def n_cases(self) -> int:
        return len(self.cases)

    def current_case(self) -> Case | None:
        return self.cases[self.current] if 0 <= self.current < len(self.cases) else None

    def result_for(self, number: int) -> CaseResult | None:
        for result in self.results:
            if result.number == number:
                return result
        return None

    def current_result(self) -> CaseResult | None:
        case = self.current_case()
        return self.result_for(case.number) if case is not None else None

    def elapsed(self, now: float) -> float:
        return self.clock.elapsed(now)

    def remaining(self, now: float) -> float | None:
        """Seconds left (never below 0); None when untimed."""
        if self.spec.time_limit_s is None:
            return None
        return max(0.0, float(self.spec.time_limit_s) - self.elapsed(now))

    def timed_out(self, now: float) -> bool:
        remaining = self.remaining(now)
        return remaining is not None and remaining <= 0.0

    def progress_text(self, now: float) -> str:
        """The status-bar text, e.g. "Packet 7/30 · 12:31 left"."""
        number = min(self.current + 1, self.n_cases)
        remaining = self.remaining(now)
        time_text = (f"{format_seconds(remaining)} left" if remaining is not None
                     else f"{format_seconds(self.elapsed(now))} (untimed)")
        paused = " · paused" if not self.clock.running and not self.finished else ""
        return f"Packet {number}/{self.n_cases} · {time_text}{paused}"

    # ---------------------------------------------------------------- changes (new values)
    def started(self, now: float) -> PacketState:
        return replace(self, clock=self.clock.start(now))

    def paused(self, now: float) -> PacketState:
        return replace(self, clock=self.clock.pause(now))

    def with_call(self, call: str, confidence: int, now: float, model_label: str | None = None,
                  model_name: str = "", outside_training_data: bool = False) -> PacketState:
        """Record the call on the current case (once; a second call on the same case is ignored)."""
        case = self.current_case()
        if case is None or self.finished or self.result_for(case.number) is not None:
            return self
        seconds = max(0.0, self.elapsed(now) - self.case_started_s)
        result = CaseResult(case.number, call, int(confidence), round(seconds, 3), model_label, model_name,
                            bool(outside_training_data))
        return replace(self, results=self.results + (result,))

    def with_model_label(self, number: int, model_label: str, model_name: str = "",
                         outside_training_data: bool = False) -> PacketState:
        """Fill in the model's call of a recorded case (it may arrive after the trainee's)."""
        results = tuple(replace(r, model_label=model_label, model_name=model_name or r.model_name,
                                outside_training_data=bool(outside_training_data))
                        if r.number == number else r for r in self.results)
        return replace(self, results=results)

    def advanced(self, now: float) -> PacketState:
        """On to the next case without a result; finished ("complete") after the last."""
        following = [i for i in range(self.current + 1, self.n_cases)
                     if self.result_for(self.cases[i].number) is None]
        if not following:
            return self.finished_now(now, "complete")
        return replace(self, current=following[0], case_started_s=self.elapsed(now))

    def finished_now(self, now: float, reason: str) -> PacketState:
        return replace(self, clock=self.clock.pause(now), finished=True, finish_reason=reason)

    # ---------------------------------------------------------------- JSON
    def to_json(self, now: float | None = None) -> str:
        """JSON of the state; the clock is saved paused at `now` (a restart is a pause)."""
        clock = self.clock.pause(now) if now is not None else PacketClock(self.clock.elapsed_before_s)
        data = {
            "format": PACKET_FORMAT,
            "packet_id": self.packet_id,
            "created": self.created,
            "spec": asdict(self.spec),
            "cases": [asdict(case) for case in self.cases],
            "results": [asdict(result) for result in self.results],
            "current": self.current,
            "case_started_s": self.case_started_s,
            "elapsed_s": round(clock.elapsed_before_s, 3),
            "finished": self.finished,
            "finish_reason": self.finish_reason,
            "note": self.note,
        }
        return json.dumps(data, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> PacketState:
        """The state saved by `to_json` (paused). Raises PracticeError when it is not one."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != PACKET_FORMAT:
                raise ValueError(f"not a practice packet of format {PACKET_FORMAT}")
            spec = PacketSpec(**data["spec"])
            cases = tuple(Case(int(c["number"]), str(c["path"]), str(c["label"])) for c in data["cases"])
            results = tuple(CaseResult(int(r["number"]), str(r["call"]), int(r["confidence"]),
                                       float(r["seconds"]), r.get("model_label"), str(r.get("model_name", "")),
                                       r.get("outside_training_data") is True)   # absent: saved before the flag
                            for r in data.get("results", []))
            current = int(data.get("current", 0))
            if not cases or not 0 <= current <= len(cases):
                raise ValueError("the case list or position is invalid")
            return cls(
                packet_id=str(data["packet_id"]), created=str(data.get("created", "")), spec=spec,
                cases=cases, results=results, current=current,
                case_started_s=float(data.get("case_started_s", 0.0)),
                clock=PacketClock(float(data.get("elapsed_s", 0.0))),
                finished=bool(data.get("finished", False)), finish_reason=str(data.get("finish_reason", "")),
                note=str(data.get("note", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PracticeError(f"the saved practice packet could not be read ({exc})") from exc


def format_seconds(seconds: float) -> str:
    """12:31, or 1:02:03 past an hour."""
    total = int(math.ceil(max(0.0, seconds) - 1e-9))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def new_packet(spec: PacketSpec, pool: Sequence[LabelledImage], created: str | None = None) -> PacketState:
    """A packet drawn from `pool` by `spec` (its seed), not yet started. Raises PracticeError when empty."""
    selection = select_cases(pool, spec.n_cases, spec.balanced, spec.seed)
    if not selection.cases:
        raise PracticeError(f"{Path(spec.source).name}: no labelled images found (class folders such as "
                            "NORMAL/ and PNEUMONIA/, or a manifest CSV with path,label)")
    created = created or _now_iso()
    packet_id = f"{created[:19].replace(':', '').replace('-', '')}-{spec.seed}"
    return PacketState(packet_id=packet_id, created=created, spec=spec, cases=selection.cases, note=selection.note)


# ============================================================================ persistence

def state_path(folder: str | Path | None = None) -> Path:
    from cxrviewer.teaching.reads import data_dir

    return Path(folder if folder is not None else data_dir()) / STATE_FILENAME


def save_state(state: PacketState, path: str | Path, now: float | None = None) -> Path:
    """Write the state atomically (a temporary file, then a rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(state.to_json(now), encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        raise PracticeError(f"{path}: the practice packet could not be saved ({exc})") from exc
    return path


def load_state(path: str | Path) -> PacketState | None:
    """The saved state, or None when there is no file. Raises PracticeError when it is unreadable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PracticeError(f"{path}: could not be read ({exc})") from exc
    return PacketState.from_json(text)


def clear_state(path: str | Path) -> None:
    Path(path).unlink(missing_ok=True)


def stage_cases(state: PacketState, folder: str | Path) -> dict[int, Path]:
    """Copies of the cases as `folder/<packet id>/case-07.jpeg`; case number → copy.

    A case whose file cannot be copied keeps its original path (it is then still readable,
    just not blinded). Copies already there (a resumed packet) are reused.
    """
    target = Path(folder) / state.packet_id
    staged: dict[int, Path] = {}
    width = max(2, len(str(state.n_cases)))
    for case in state.cases:
        source = Path(case.path)
        copy = target / f"case-{case.number:0{width}d}{source.suffix.lower()}"
        try:
            if not copy.is_file() or copy.stat().st_size != source.stat().st_size:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
            staged[case.number] = copy
        except OSError:
            staged[case.number] = source
    return staged


def remove_staged(state: PacketState, folder: str | Path) -> None:
    shutil.rmtree(Path(folder) / state.packet_id, ignore_errors=True)


# ============================================================================ scoring

@dataclass(frozen=True)
class CaseScore:
    case: Case
    result: CaseResult | None

    @property
    def read(self) -> bool:
        return self.result is not None

    @property
    def correct(self) -> bool | None:
        """The trainee's normal/abnormal call matches the known label."""
        return None if self.result is None else self.result.abnormal == self.case.abnormal

    @property
    def class_correct(self) -> bool | None:
        """The exact class matches (same rule as My Reads: PNEUMONIA is matched by either subtype)."""
        if self.result is None:
            return None
        from cxrviewer.teaching.reads import call_agrees

        return bool(call_agrees(self.result.call, self.case.label))

    @property
    def model_correct(self) -> bool | None:
        if self.result is None or not self.result.model_label:
            return None
        return is_abnormal_label(self.result.model_label) == self.case.abnormal

    @property
    def agrees_with_model(self) -> bool | None:
        if self.result is None or not self.result.model_label:
            return None
        return self.result.abnormal == is_abnormal_label(self.result.model_label)

    @property
    def model_withheld(self) -> bool:
        """The viewer withheld the model's call on this case (the OOD gate): it does not count for the model."""
        return self.result is not None and self.result.model_withheld


@dataclass(frozen=True)
class ConfidenceBin:
    low: int               # confidence range, percent (the last bin includes 100)
    high: int
    count: int
    mean_confidence: float | None   # 0–1
    accuracy: float | None          # share correct (normal/abnormal)


@dataclass(frozen=True)
class ScoreSheet:
    n_cases: int
    n_read: int
    true_positive: int
    false_negative: int
    true_negative: int
    false_positive: int
    n_class_correct: int
    n_with_model: int          # cases read with a model call shown (flagged cases left out)
    n_agree_model: int
    n_model_correct: int
    cases: tuple[CaseScore, ...]
    bins: tuple[ConfidenceBin, ...]
    elapsed_s: float
    finish_reason: str
    n_flagged: int = 0         # cases read with a model call left out of the model figures: withheld (OOD)

    @property
    def n_correct(self) -> int:
        return self.true_positive + self.true_negative

    accuracy = Rate("n_correct", over="n_read")          # normal/abnormal right
    sensitivity = Rate("true_positive", over=("true_positive", "false_negative"))
    specificity = Rate("true_negative", over=("true_negative", "false_positive"))
    class_accuracy = Rate("n_class_correct", over="n_read")
    model_agreement = Rate("n_agree_model", over="n_with_model")
    model_accuracy = Rate("n_model_correct", over="n_with_model")

    @property
    def model_right_you_wrong(self) -> tuple[CaseScore, ...]:
        return tuple(s for s in self.cases if s.model_correct is True and s.correct is False and not s.model_withheld)

    @property
    def you_right_model_wrong(self) -> tuple[CaseScore, ...]:
        return tuple(s for s in self.cases if s.correct is True and s.model_correct is False and not s.model_withheld)

    @property
    def seconds(self) -> tuple[float, ...]:
        return tuple(s.result.seconds for s in self.cases if s.result is not None)

    @property
    def mean_seconds(self) -> float | None:
        values = self.seconds
        return sum(values) / len(values) if values else None

    @property
    def median_seconds(self) -> float | None:
        values = sorted(self.seconds)
        if not values:
            return None
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def confidence_bins(scores: Iterable[CaseScore], bins: int = CONFIDENCE_BINS) -> tuple[ConfidenceBin, ...]:
    """Equal-width confidence bins (0–20, 20–40, … 80–100 %) with the share correct in each."""
    width = 100 / bins
    grouped: list[list[CaseScore]] = [[] for _ in range(bins)]
    for score in scores:
        if score.result is None:
            continue
        index = min(int(score.result.confidence // width), bins - 1)
        grouped[index].append(score)
    out: list[ConfidenceBin] = []
    for index, members in enumerate(grouped):
        low, high = round(index * width), round((index + 1) * width)
        if not members:
            out.append(ConfidenceBin(low, high, 0, None, None))
            continue
        mean_conf = sum(m.result.confidence for m in members if m.result) / len(members) / 100
        accuracy = sum(1 for m in members if m.correct) / len(members)
        out.append(ConfidenceBin(low, high, len(members), mean_conf, accuracy))
    return tuple(out)


def score_packet(state: PacketState, now: float | None = None) -> ScoreSheet:
    """The score sheet of a packet (finished or not): only the cases read count."""
    scores = tuple(CaseScore(case, state.result_for(case.number)) for case in state.cases)
    tp = fn = tn = fp = 0
    for score in scores:
        if score.result is None:
            continue
        if score.case.abnormal:
            tp += score.result.abnormal
            fn += not score.result.abnormal
        else:
            tn += not score.result.abnormal
            fp += score.result.abnormal
    read = [(s.result, s) for s in scores if s.result is not None]
    agreement, n_flagged = scored_for_model((result, s.agrees_with_model) for result, s in read)
    model_correct, _ = scored_for_model((result, s.model_correct) for result, s in read)
    elapsed = state.elapsed(now) if now is not None else state.clock.elapsed_before_s
    return ScoreSheet(
        n_cases=len(scores), n_read=sum(s.read for s in scores),
        true_positive=tp, false_negative=fn, true_negative=tn, false_positive=fp,
        n_class_correct=sum(bool(s.class_correct) for s in scores),
        n_with_model=len(agreement), n_agree_model=sum(agreement), n_model_correct=sum(model_correct),
        cases=scores, bins=confidence_bins(scores), elapsed_s=elapsed, finish_reason=state.finish_reason,
        n_flagged=n_flagged,
    )


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def flagged_note(n_flagged: int) -> str:
    """ "2 flagged cases not counted: …" for the figures about the model ("" when none was left out)."""
    left_out = flagged_left_out(n_flagged, "case")
    return f"{left_out}: outside the model's training data, its call was withheld" if left_out else ""


def model_cell(result: CaseResult | None) -> str:
    """The model column of a case: its call, "withheld (NORMAL)" for a flagged case, "—" for none."""
    if result is None:
        return ""
    if not result.model_label:
        return "—"
    return f"withheld ({result.model_label})" if result.model_withheld else result.model_label


def summary_lines(sheet: ScoreSheet) -> list[str]:
    """The headline numbers in words (the dialog, the PDF)."""
    lines = [
        f"Cases read: {sheet.n_read} of {sheet.n_cases} in {format_seconds(sheet.elapsed_s)}"
        + {"time": " (time ran out)", "stopped": " (stopped early)"}.get(sheet.finish_reason, ""),
        f"Accuracy (normal / abnormal): {percent(sheet.accuracy)} ({sheet.n_correct}/{sheet.n_read})",
        f"Sensitivity: {percent(sheet.sensitivity)} ({sheet.true_positive}/"
        f"{sheet.true_positive + sheet.false_negative} abnormal called abnormal)",
        f"Specificity: {percent(sheet.specificity)} ({sheet.true_negative}/"
        f"{sheet.true_negative + sheet.false_positive} normal called normal)",
        f"Exact class: {percent(sheet.class_accuracy)} ({sheet.n_class_correct}/{sheet.n_read})",
    ]
    left_out = flagged_note(sheet.n_flagged)
    if sheet.n_with_model:
        lines.append(f"Agreement with the model's call: {percent(sheet.model_agreement)} "
                     f"({sheet.n_agree_model}/{sheet.n_with_model}); the model's accuracy on these cases "
                     f"{percent(sheet.model_accuracy)}" + (f" ({left_out})" if left_out else ""))
    elif left_out:
        lines.append(f"Agreement with the model's call: — ({left_out})")
    else:
        lines.append("Agreement with the model's call: — (no model result for these cases)")
    if sheet.mean_seconds is not None:
        lines.append(f"Time per case: mean {sheet.mean_seconds:.0f} s, median {sheet.median_seconds:.0f} s")
    return lines


CSV_COLUMNS = ("case", "file", "known_label", "known_abnormal", "your_call", "your_abnormal", "confidence",
               "seconds", "correct", "class_correct", "model", "model_call", "model_correct", "agrees_with_model",
               "model_withheld")


def _csv_bool(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def score_csv(sheet: ScoreSheet) -> str:
    """One row per case (unread cases have an empty call)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for score in sheet.cases:
        case, result = score.case, score.result
        writer.writerow([
            case.number, case.path, case.label, _csv_bool(case.abnormal),
            result.call if result else "", _csv_bool(result.abnormal) if result else "",
            result.confidence if result else "", f"{result.seconds:.1f}" if result else "",
            _csv_bool(score.correct), _csv_bool(score.class_correct),
            result.model_name if result else "", (result.model_label or "") if result else "",
            # a withheld call does not count for the model: its correctness and agreement stay empty
            "" if score.model_withheld else _csv_bool(score.model_correct),
            "" if score.model_withheld else _csv_bool(score.agrees_with_model),
            _csv_bool(score.model_withheld) if result else "",
        ])
    return out.getvalue()


def write_score_csv(sheet: ScoreSheet, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.write_text(score_csv(sheet), encoding="utf-8")
    except OSError as exc:
        raise PracticeError(f"{path.name}: the score sheet could not be written ({exc})") from exc
    return path


MODEL_PDF_WIDTH = 12     # "⚠ BACTERIAL" (a withheld call) fits whole


def model_pdf_cell(result: CaseResult) -> str:
    """The PDF table's model column: the call, or "⚠ " and the call when withheld."""
    label = result.model_label or "—"
    cell = "⚠ " + label if result.model_withheld and result.model_label else label
    return cell[:MODEL_PDF_WIDTH]


def score_figure(state: PacketState, sheet: ScoreSheet) -> Any:
    """A one-page A4 matplotlib Figure of the score sheet (no pyplot, no GUI backend)."""
    from matplotlib.figure import Figure

    from cxrviewer import NOT_FOR_CLINICAL_USE

    figure = Figure(figsize=(8.27, 11.69), dpi=100)
    figure.text(0.06, 0.965, "Practice packet — score sheet", fontsize=16, weight="bold", va="top")
    figure.text(0.06, 0.94, NOT_FOR_CLINICAL_USE, fontsize=9.5, color="#a33", va="top")
    figure.text(0.94, 0.965, state.created.replace("T", " ")[:16], fontsize=8, color="#555", ha="right", va="top")
    spec = state.spec
    limit = f"{spec.time_limit_s / 60:.0f} min" if spec.time_limit_s else "untimed"
    setup = (f"Source {Path(spec.source).name}; {state.n_cases} cases, "
             f"{'balanced' if spec.balanced else 'random mix'}, {limit}, AI shown "
             f"{'after each case' if spec.reveal == REVEAL_EACH else 'at the end'}; seed {spec.seed}")
    figure.text(0.06, 0.915, setup, fontsize=8.5, color="#333", va="top")
    import textwrap

    summary = "\n".join(textwrap.fill(line, 62, subsequent_indent="    ") for line in summary_lines(sheet))
    figure.text(0.06, 0.89, summary, fontsize=9.5, va="top", linespacing=1.5)

    axes = figure.add_axes((0.66, 0.70, 0.28, 0.17))
    centres = [(b.low + b.high) / 200 for b in sheet.bins]
    accuracies = [b.accuracy if b.accuracy is not None else 0.0 for b in sheet.bins]
    axes.bar(centres, accuracies, width=0.18, color="#2d6cdf")
    axes.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1)
    for b, x in zip(sheet.bins, centres):
        axes.text(x, 0.02, f"n={b.count}", ha="center", fontsize=7, color="white" if b.count else "#555")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("your confidence", fontsize=8)
    axes.set_ylabel("share correct", fontsize=8)
    axes.set_title("Calibration", fontsize=9, loc="left")
    axes.tick_params(labelsize=7)

    lines = ["Model right, you wrong: " + (", ".join(f"#{s.case.number}" for s in sheet.model_right_you_wrong)
                                          or "none"),
             "You right, model wrong: " + (", ".join(f"#{s.case.number}" for s in sheet.you_right_model_wrong)
                                          or "none"), ""]
    lines.append(f"{'#':>3}  {'known':<10} {'you':<10} {'conf':>4}  {'time':>6}  {'model':<{MODEL_PDF_WIDTH}} ok  file")
    for score in sheet.cases:
        case, result = score.case, score.result
        mark = {True: "✔", False: "✘", None: "–"}[score.correct]
        name = Path(case.path).name
        name = name if len(name) <= 34 else name[:31] + "…"
        if result is None:
            lines.append(f"{case.number:>3}  {case.label[:10]:<10} {'(not read)':<10} {'':>4}  {'':>6}  "
                         f"{'':<{MODEL_PDF_WIDTH}} {mark}   {name}")
        else:
            lines.append(f"{case.number:>3}  {case.label[:10]:<10} {result.call[:10]:<10} {result.confidence:>4}  "
                         f"{result.seconds:>5.0f}s  {model_pdf_cell(result):<{MODEL_PDF_WIDTH}} {mark}   {name}")
    size = 7.5 if len(sheet.cases) <= 40 else max(4.0, 7.5 * 40 / len(sheet.cases))
    figure.text(0.06, 0.66, "\n".join(lines[:3]), fontsize=9, va="top", linespacing=1.4)
    figure.text(0.06, 0.60, "\n".join(lines[3:]), fontsize=size, va="top", family="DejaVu Sans Mono",
                linespacing=1.35)
    if sheet.n_flagged:
        figure.text(0.06, 0.045, "⚠ the image was outside the model's training data: its call was withheld and "
                    "is not counted for the model.", fontsize=7.5, color="#555")
    figure.text(0.06, 0.025, "Normal/abnormal scoring: abnormal = any label or call other than NORMAL. "
                "Time per case excludes pauses.", fontsize=7.5, color="#555")
    return figure


def write_score_pdf(state: PacketState, sheet: ScoreSheet, path: str | Path, dpi: int = 150) -> Path:
    """The score sheet as a one-page PDF (or PNG by the suffix). Raises PracticeError naming the file."""
    return save_page(score_figure(state, sheet), Path(path), "Practice packet score sheet", "score sheet",
                     PracticeError, dpi)


__all__: Sequence[str] = (
    "Case", "CaseResult", "CaseScore", "ConfidenceBin", "LabelledImage", "PacketClock", "PacketSpec",
    "PacketState", "PracticeError", "ScoreSheet", "Selection", "clear_state", "confidence_bins",
    "flagged_note", "format_seconds", "labelled_images", "model_cell", "load_state", "new_packet", "pool_counts", "save_state",
    "score_csv", "score_packet", "select_cases", "stage_cases", "state_path", "summary_lines",
    "write_score_csv", "write_score_pdf",
)
