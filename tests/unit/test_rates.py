"""teaching.rates.Rate: the summaries' "hits out of total" figures."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from cxrviewer.teaching.rates import Rate, rate


@dataclass(frozen=True)
class Counts:
    hits: int
    misses: int
    shown: int

    share = Rate("hits", over=("hits", "misses"))
    of_shown = Rate("hits", over="shown")


def test_a_rate_divides_its_counts_and_is_none_for_an_empty_total() -> None:
    assert Counts(3, 1, 6).share == 0.75 and Counts(3, 1, 6).of_shown == 0.5
    assert Counts(0, 0, 0).share is None and rate(0, 0) is None
    assert isinstance(Counts.share, Rate)
    with pytest.raises(AttributeError):
        Counts(1, 1, 1).share = 0.2   # type: ignore[misc]
