"""My Reads › Packets without Qt: finished packets are archived, the paused one is listed first, scores are
counted against the known labels, unreadable files are skipped."""
from __future__ import annotations

from pathlib import Path

from cxrviewer.teaching.packet_history import (
    FINISHED,
    PAUSED,
    archive_packet,
    history_folder,
    packet_summaries,
)
from cxrviewer.teaching.practice import (
    LAST_FILENAME,
    LabelledImage,
    PacketSpec,
    PacketState,
    is_abnormal_label,
    new_packet,
    save_state,
    state_path,
)


def _pool() -> list[LabelledImage]:
    return ([LabelledImage(f"/x/NORMAL/n{i}.png", "NORMAL") for i in range(3)]
            + [LabelledImage(f"/x/PNEUMONIA/a{i}.png", "BACTERIAL") for i in range(3)])


def _read_all(packet: PacketState, right: int, start: float = 0.0) -> PacketState:
    """Call every case, the first `right` of them correctly (normal/abnormal), 10 s each."""
    packet = packet.started(start)
    now = start
    for index, case in enumerate(packet.cases):
        now += 10.0
        correct = "bacterial" if is_abnormal_label(case.label) else "normal"
        wrong = "normal" if correct != "normal" else "bacterial"
        packet = packet.with_call(correct if index < right else wrong, 70, now=now).advanced(now)
    return packet


def test_finished_packets_newest_first_after_the_paused_one(tmp_path: Path) -> None:
    older = _read_all(new_packet(PacketSpec("/x", 4, seed=1), _pool(), created="2026-11-30T09:00:00+00:00"), 3)
    newer = _read_all(new_packet(PacketSpec("/x", 4, seed=2), _pool(), created="2026-12-01T09:00:00+00:00"), 4)
    assert older.finished and newer.finished
    archive_packet(older, tmp_path)
    archive_packet(newer, tmp_path)
    paused = new_packet(PacketSpec("/x", 5, seed=3), _pool(), created="2026-12-01T10:00:00+00:00").started(0.0)
    paused = paused.with_call("normal", 50, now=20.0).advanced(20.0).paused(30.0)
    save_state(paused, state_path(tmp_path))

    rows = packet_summaries(tmp_path)
    assert [(r.packet_id, r.status) for r in rows] == [
        (paused.packet_id, PAUSED), (newer.packet_id, FINISHED), (older.packet_id, FINISHED)]
    first, best, worst = rows
    assert (best.n_cases, best.n_read, best.n_correct, best.score_text) == (4, 4, 4, "4/4 (100 %)")
    assert (worst.score_text, worst.time_text, worst.date_text) == ("3/4 (75 %)", "0:40", "2026-11-30 09:00")
    assert worst.status_text == "finished" and worst.path.parent == history_folder(tmp_path)
    assert first.status_text == "paused at case 2 of 5" and first.time_text == "0:30"
    assert first.path == state_path(tmp_path)


def test_the_last_packet_of_before_the_archive_is_listed_once(tmp_path: Path) -> None:
    packet = _read_all(new_packet(PacketSpec("/x", 2, seed=7), _pool(), created="2026-12-01T08:00:00+00:00"), 1)
    save_state(packet, tmp_path / LAST_FILENAME)
    assert [r.path.name for r in packet_summaries(tmp_path)] == [LAST_FILENAME]
    archive_packet(packet, tmp_path)                   # the same packet archived too: one row, the archive's
    rows = packet_summaries(tmp_path)
    assert len(rows) == 1 and rows[0].path.parent == history_folder(tmp_path)
    early = new_packet(PacketSpec("/x", 4, seed=8), _pool(), created="2026-12-01T07:00:00+00:00").started(0.0)
    archive_packet(early.with_call("normal", 60, now=5.0).finished_now(9.0, "stopped"), tmp_path)
    assert [r.status_text for r in packet_summaries(tmp_path)] == ["finished", "finished (stopped early)"]


def test_unreadable_files_are_skipped_and_an_empty_folder_lists_nothing(tmp_path: Path) -> None:
    assert packet_summaries(tmp_path / "none") == []
    history_folder(tmp_path).mkdir(parents=True)
    (history_folder(tmp_path) / "broken.json").write_text("{not json", encoding="utf-8")
    good = _read_all(new_packet(PacketSpec("/x", 2, seed=5), _pool()), 2)
    archive_packet(good, tmp_path)
    assert [r.packet_id for r in packet_summaries(tmp_path)] == [good.packet_id]
