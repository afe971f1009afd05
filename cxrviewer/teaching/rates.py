"""`Rate`: a share of two counts on a frozen summary, declared once per figure.

The My Reads summary and the practice score sheet report many "hits out of total" figures
(agreement with the model, accuracy, sensitivity, …); each is `Rate(hits, over=total)` in the
class body instead of a property that divides by hand, and every one is None for an empty total.
"""
from __future__ import annotations

from typing import overload

__all__ = ["Rate", "rate"]


def rate(hits: int, total: int) -> float | None:
    """`hits / total`, None when there is nothing to count."""
    return hits / total if total else None


class Rate:
    """`summary.<name>`: attribute `hits` over the sum of the attributes named in `over` (None when 0)."""

    def __init__(self, hits: str, over: str | tuple[str, ...]) -> None:
        self.hits = hits
        self.over = (over,) if isinstance(over, str) else over

    @overload
    def __get__(self, summary: None, owner: type) -> Rate: ...
    @overload
    def __get__(self, summary: object, owner: type) -> float | None: ...

    def __get__(self, summary: object | None, owner: type) -> Rate | float | None:
        if summary is None:
            return self
        return rate(int(getattr(summary, self.hits)), sum(int(getattr(summary, name)) for name in self.over))

    def __set__(self, summary: object, value: object) -> None:
        raise AttributeError(f"a rate is computed from {self.hits} and {' + '.join(self.over)}")
