"""`ViewerSession`: what is open and what is shown — the entries, the current index, the image, the request ids.

Before, this lived on the QMainWindow as private fields and was read back from it. Here it
is one small model with the newest-wins rule for loads written once: `begin_load` hands
out the id the loader is asked with, and only the result carrying the newest id may become
the image shown (`accept_loaded` / `accept_failure` answer False for a stale one).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from cxrviewer.core.model.runtime import image_key
from cxrviewer.core.types import XrayImage
from cxrviewer.state.events import Event
from cxrviewer.state.readonly import ReadOnly

__all__ = ["DisplayName", "HasPath", "ViewerSession", "Position"]


class HasPath(Protocol):
    @property
    def path(self) -> Path: ...


E = TypeVar("E", bound=HasPath)


@dataclass(frozen=True)
class Position:
    """Where the session stands: `index` of `count` entries (-1: none chosen)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not -1 <= self.index < max(self.count, 0):
            raise ValueError(f"position {self.index} is neither -1 (none) nor one of {self.count} entries")

    @property
    def has_next(self) -> bool:
        return self.index + 1 < self.count

    @property
    def has_previous(self) -> bool:
        return self.index > 0


@dataclass(frozen=True)
class DisplayName:
    """What the screen calls a file instead of its file and folder names (a practice case, whose names
    could give the answer away or are a temporary folder's)."""

    image: str   # window title, status bar, the study browser's image row, the corner text
    study: str   # the study browser's study row


def _same_file(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):        # a symlink loop or an unreadable folder: compare as given
        return Path(path).absolute()


class ViewerSession(Generic[E]):
    """Entries (anything with a `.path`, e.g. the study browser's rows), the current one, the image shown."""

    def __init__(self) -> None:
        self._entries: tuple[E, ...] = ()
        self._index = -1
        self._image: XrayImage | None = None
        self._load_id = 0
        self._scan_id = 0
        self._display_names: dict[Path, DisplayName] = {}
        self.advance_on_failure = False      # while opening: skip files that fail to the first good one
        self.entries_changed: Event[tuple[E, ...]] = Event("entries changed")
        self.index_changed: Event[int] = Event("current index changed")
        self.image_changed: Event[XrayImage | None] = Event("image shown changed")

    # -- reading ---------------------------------------------------------------------------
    entries: ReadOnly[tuple[E, ...]] = ReadOnly()
    index: ReadOnly[int] = ReadOnly()
    image: ReadOnly[XrayImage | None] = ReadOnly()
    load_id: ReadOnly[int] = ReadOnly()        # the id of the newest load request (0: none yet)
    scan_id: ReadOnly[int] = ReadOnly()

    def position(self) -> Position:
        return Position(self._index, len(self._entries))

    def paths(self) -> list[Path]:
        return [entry.path for entry in self._entries]

    def current_path(self) -> Path | None:
        return self._entries[self._index].path if 0 <= self._index < len(self._entries) else None

    def current_key(self) -> str | None:
        return image_key(self._image) if self._image is not None else None

    def index_of(self, path: Path) -> int | None:
        for index, entry in enumerate(self._entries):
            if entry.path == path:
                return index
        return None

    def display_name(self, path: Path | None) -> DisplayName | None:
        """The name shown for the file at `path` instead of its own (None: its own name is shown)."""
        if path is None or not self._display_names:
            return None
        return self._display_names.get(_same_file(path))

    def shown_name(self, path: Path) -> str:
        """What the screen calls the file at `path`: its display name, else its file name."""
        name = self.display_name(path)
        return name.image if name is not None else path.name

    def named(self, image: XrayImage) -> XrayImage:
        """`image` carrying its file's display name, when it has one."""
        name = self.display_name(image.path)
        if name is None:
            return image
        frame = f" [{image.frame_index + 1}/{image.frame_count}]" if image.frame_count > 1 else ""
        return replace(image, display_name=name.image + frame)

    # -- changing --------------------------------------------------------------------------
    def set_display_names(self, names: Mapping[Path, DisplayName]) -> None:
        """Files to be shown under other names from their next opening (replaces any set before; {}: none)."""
        self._display_names = {_same_file(path): name for path, name in names.items()}

    def set_scan_id(self, request_id: int) -> None:
        self._scan_id = int(request_id)

    def is_current_scan(self, request_id: int) -> bool:
        return request_id == self._scan_id

    def set_entries(self, entries: Sequence[E]) -> None:
        """A new list of images (a folder was opened); nothing is chosen until `select`."""
        self._entries = tuple(entries)
        self._index = -1
        self.entries_changed.emit(self._entries)

    def select(self, index: int) -> bool:
        """Make `index` current (False: out of range, nothing changes)."""
        if not 0 <= index < len(self._entries):
            return False
        self._index = index
        self.index_changed.emit(index)
        return True

    def begin_load(self, request_id: int) -> None:
        """The loader was asked for the current entry with `request_id`: every older answer is now stale."""
        self._load_id = int(request_id)

    def is_current_load(self, request_id: int) -> bool:
        return request_id == self._load_id

    def accept_loaded(self, request_id: int, image: XrayImage) -> bool:
        """The newest load finished: `image` is the one shown (False for a stale answer, which changes
        nothing). Not announced yet: the window first puts it on screen, then calls `announce()`."""
        if request_id != self._load_id:
            return False
        self.advance_on_failure = False
        self._image = image
        return True

    def clear_image(self) -> None:
        """Nothing is shown (a failed load); `announce()` tells the listeners."""
        self._image = None

    def announce(self) -> None:
        """Tell the listeners which image is shown now."""
        self.image_changed.emit(self._image)

    def accept_failure(self, request_id: int) -> int | None:
        """The newest load failed: the next index to try while opening, else None (stale: None too)."""
        if request_id != self._load_id:
            return None
        if self.advance_on_failure and self._index + 1 < len(self._entries):
            return self._index + 1
        self.advance_on_failure = False
        return None

    def show(self, image: XrayImage | None) -> None:
        self._image = image
        self.announce()
