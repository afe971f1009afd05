"""A tiny typed observer: `Event[T]` with connect / disconnect / emit, no Qt.

The state models announce changes through these; widgets (or a Qt bridge) connect and
re-render. Callbacks run synchronously, in connection order, on the thread that emits
(the state models are used from the GUI thread only). A callback that raises is not
swallowed: a broken listener is a bug to see, not to hide.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["Event"]


class Event(Generic[T]):
    """One kind of change with a payload of type T (use `Event[None]` for "something changed")."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Callable[[T], object]] = []
        self._blocked = 0

    def connect(self, callback: Callable[[T], object]) -> Callable[[T], object]:
        """Call `callback(payload)` on every emit; returns it (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[T], object]) -> None:
        """Stop calling `callback`; unknown callbacks are ignored."""
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass

    def emit(self, payload: T) -> None:
        if self._blocked:
            return
        for callback in list(self._callbacks):
            callback(payload)

    def blocked(self) -> _Blocker:
        """`with event.blocked(): ...` — no emits inside (e.g. while restoring settings)."""
        return _Blocker(self)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._callbacks)} listeners)"


class _Blocker:
    def __init__(self, event: Event[Any]) -> None:
        self._event = event

    def __enter__(self) -> None:
        self._event._blocked += 1

    def __exit__(self, *_exc: object) -> None:
        self._event._blocked -= 1
