"""The trainee's practice packets for My Reads: every finished packet, and the one paused (#16).

A finished packet is archived as `<data folder>/practice_packets/<packet id>.json` (the same
JSON as the resumable state, `PacketState.to_json`); the unfinished one stays in
`practice_packet.json`. `packet_summaries` lists them for the Packets tab: date, number of
cases, score, time, status — the paused packet first, then the finished ones, newest first.
No Qt.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cxrviewer.teaching.practice import (
    LAST_FILENAME,
    PacketState,
    PracticeError,
    format_seconds,
    load_state,
    percent,
    save_state,
    score_packet,
    state_path,
)
from cxrviewer.teaching.rates import Rate

log = logging.getLogger(__name__)

HISTORY_DIRNAME = "practice_packets"


class PacketStatus(str, Enum):
    """Where a packet in My Reads stands: finished (archived) or paused (the resumable state); equal to its value."""

    FINISHED = "finished"
    PAUSED = "paused"


FINISHED, PAUSED = PacketStatus.FINISHED, PacketStatus.PAUSED


@dataclass(frozen=True)
class PacketSummary:
    """One row of My Reads › Packets."""

    path: Path                 # the packet's JSON (archived, or the resumable state)
    packet_id: str
    created: str               # ISO time the packet was drawn
    n_cases: int
    n_read: int
    n_correct: int
    elapsed_s: float
    status: PacketStatus
    finish_reason: str = ""    # "complete", "time" or "stopped" for a finished packet

    accuracy = Rate("n_correct", over="n_read")   # of the cases read, against the known labels

    @property
    def date_text(self) -> str:
        return self.created.replace("T", " ")[:16]

    @property
    def score_text(self) -> str:
        if not self.n_read:
            return "—"
        return f"{self.n_correct}/{self.n_read} ({percent(self.accuracy)})"

    @property
    def time_text(self) -> str:
        return format_seconds(self.elapsed_s)

    @property
    def status_text(self) -> str:
        if self.status == PAUSED:
            return f"paused at case {min(self.n_read + 1, self.n_cases)} of {self.n_cases}"
        reason = {"time": "time up", "stopped": "stopped early"}.get(self.finish_reason, "")
        return f"finished ({reason})" if reason else "finished"


def history_folder(folder: str | Path) -> Path:
    return Path(folder) / HISTORY_DIRNAME


def archive_packet(state: PacketState, folder: str | Path) -> Path:
    """Keep a finished packet for My Reads (raises PracticeError when it cannot be written)."""
    return save_state(state, history_folder(folder) / f"{state.packet_id}.json")


def summarise_packet(state: PacketState, path: Path) -> PacketSummary:
    sheet = score_packet(state)
    return PacketSummary(
        path=path, packet_id=state.packet_id, created=state.created, n_cases=state.n_cases, n_read=sheet.n_read,
        n_correct=sheet.n_correct, elapsed_s=sheet.elapsed_s,
        status=FINISHED if state.finished else PAUSED, finish_reason=state.finish_reason if state.finished else "",
    )


def packet_summaries(folder: str | Path) -> list[PacketSummary]:
    """The paused packet (if any) first, then every finished one, newest first; unreadable files are skipped."""
    folder = Path(folder)
    paused: list[PacketSummary] = []
    finished: dict[str, PacketSummary] = {}
    candidates = [state_path(folder), folder / LAST_FILENAME]   # the last one may predate the archive
    archive = history_folder(folder)
    if archive.is_dir():
        candidates += sorted(archive.glob("*.json"))
    for path in candidates:
        try:
            state = load_state(path)
        except PracticeError as exc:
            log.warning("%s", exc)
            continue
        if state is None:
            continue
        summary = summarise_packet(state, path)
        if summary.status == PAUSED:
            paused.append(summary)
        elif summary.packet_id not in finished or path.parent == archive:
            finished[summary.packet_id] = summary
    return paused + sorted(finished.values(), key=lambda s: (s.created, s.packet_id), reverse=True)
