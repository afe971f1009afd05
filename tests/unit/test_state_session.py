"""ViewerSession: entries, position, newest-wins loads."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxrviewer.state.session import ViewerSession
from tests.state_fakes import image


@dataclass(frozen=True)
class Entry:
    path: Path


def test_only_the_newest_load_is_shown() -> None:
    session: ViewerSession[Entry] = ViewerSession()
    shown: list[object] = []
    session.image_changed.connect(shown.append)
    session.set_entries([Entry(Path("a.png")), Entry(Path("b.png"))])
    assert session.position().index == -1 and session.select(0) and not session.select(5)
    session.begin_load(1)
    session.select(1)
    session.begin_load(2)
    assert not session.accept_loaded(1, image("a.png")) and shown == []
    assert session.accept_loaded(2, image("b.png")) and shown == []   # shown on screen first, then announced
    session.announce()
    assert session.image is shown[0]
    assert session.current_path() == Path("b.png") and session.position().has_previous
    assert not session.position().has_next and session.index_of(Path("a.png")) == 0


def test_opening_skips_failures_to_the_first_good_image() -> None:
    session: ViewerSession[Entry] = ViewerSession()
    session.set_entries([Entry(Path(f"{n}.png")) for n in range(3)])
    session.advance_on_failure = True
    session.select(0)
    session.begin_load(7)
    assert session.accept_failure(6) is None                          # stale
    assert session.accept_failure(7) == 1
    session.select(2)
    session.begin_load(8)
    assert session.accept_failure(8) is None and not session.advance_on_failure


def test_the_fields_are_read_only_views_of_the_session() -> None:
    import pytest

    session: ViewerSession[Entry] = ViewerSession()
    session.set_entries([Entry(Path("a.png")), Entry(Path("b.png"))])
    assert session.select(1)
    assert (session.index, session.entries[1].path, session.load_id) == (1, Path("b.png"), 0)
    with pytest.raises(AttributeError, match="index is read-only"):
        session.index = 0   # type: ignore[misc]
    assert session.index == 1 and session.position().has_previous and not session.position().has_next


def test_a_position_is_none_or_one_of_the_entries() -> None:
    import pytest

    from cxrviewer.state.session import Position

    assert not Position(-1, 0).has_next and Position(-1, 2).has_next and not Position(-1, 2).has_previous
    for index, count in ((2, 2), (-2, 3), (0, 0)):
        with pytest.raises(ValueError, match="neither -1"):
            Position(index, count)
