"""ViewerSession display names: a file shown under another name (a practice case), matched by the file
itself (a relative or symlinked spelling of the same path too), frames kept, cleared with {}."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from cxrviewer.state.session import DisplayName, ViewerSession
from tests.state_fakes import image

CASE = DisplayName("Practice case 3 of 12", "Practice packet 2026-12-01 18:30")


def test_a_named_file_is_shown_by_its_display_name_and_others_by_their_own(tmp_path: Path) -> None:
    session: ViewerSession[object] = ViewerSession()
    staged = tmp_path / "practice_cases" / "20261201T183000-7" / "case-03.png"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"")
    link = tmp_path / "link"
    link.symlink_to(staged.parent)
    session.set_display_names({staged: CASE})
    assert session.display_name(link / "case-03.png") == CASE          # the same file, spelt another way
    cwd = Path.cwd()
    os.chdir(staged.parent)
    try:
        assert session.display_name(Path("case-03.png")) == CASE
    finally:
        os.chdir(cwd)
    assert session.shown_name(staged) == "Practice case 3 of 12"
    assert session.display_name(tmp_path / "case-03.png") is None and session.display_name(None) is None
    assert session.shown_name(tmp_path / "other.png") == "other.png"

    case = replace(image("case-03.png"), path=staged)
    assert session.named(case).display_name == "Practice case 3 of 12" and session.named(case).path == staged
    frame = replace(case, frame_index=1, frame_count=4)
    assert session.named(frame).display_name == "Practice case 3 of 12 [2/4]"
    other = image("NORMAL/IM-0001-0001.png")
    assert session.named(other) is other

    session.set_display_names({})                                        # the packet is over
    assert session.display_name(staged) is None and session.named(case).display_name == "case-03.png"


def test_a_symlink_loop_in_a_scanned_folder_is_shown_by_its_own_name(tmp_path: Path) -> None:
    session: ViewerSession[object] = ViewerSession()
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)                       # resolve() raises RuntimeError on Python 3.11
    assert session.display_name(loop) is None
    staged = tmp_path / "case-01.png"
    staged.write_bytes(b"")
    session.set_display_names({staged: CASE})
    assert session.display_name(loop) is None
    assert session.shown_name(loop) == "loop.png"
    assert session.display_name(staged) == CASE
