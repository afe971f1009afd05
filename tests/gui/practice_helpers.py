"""What the practice GUI tests share: waiting for a staged case on screen, reading the study browser."""
from __future__ import annotations

from .helpers import LOAD_TIMEOUT_MS


def shown_case(qtbot, window, number: int) -> None:
    """Wait until practice case `number` (its staged copy) is the image on screen."""
    practice = window.practice
    qtbot.waitUntil(lambda: window.current_image() is not None and practice.staged_path(number) is not None
                    and window.current_image().path.resolve() == practice.staged_path(number).resolve(),
                    timeout=LOAD_TIMEOUT_MS)


def browser_text(window) -> str:
    """Every study-browser row's text and tooltip, one per line."""
    tree = window.study_dock.tree
    rows, stack = [], [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        rows += [item.text(0), item.toolTip(0)]
        stack += [item.child(i) for i in range(item.childCount())]
    return "\n".join(rows)
