"""Where the real test files live: ../shared beside the repository ($CXRVIEWER_SHARED overrides).

Tests that need them use `@requires_shared` (or `pytestmark = requires_shared`) and are skipped
with a clear reason when the folder is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ENV = "CXRVIEWER_SHARED"
REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The shared data folder, or None when it is not present."""
    override = os.environ.get(SHARED_ENV)
    folder = Path(override) if override else REPO_ROOT.parent / "shared"
    return folder if folder.is_dir() else None


requires_shared = pytest.mark.skipif(
    shared_dir() is None, reason="../shared not present: real-data tests skipped"
)


def shared_images(count: int) -> list[Path]:
    """Up to `count` real radiographs from the Guangzhou training split (both classes), [] without ../shared."""
    folder = shared_dir()
    if folder is None:
        return []
    paths: list[Path] = []
    for label in ("NORMAL", "PNEUMONIA"):
        class_dir = folder / "data" / "chest_xray" / "train" / label
        if class_dir.is_dir():
            paths += sorted(class_dir.glob("*.jpeg"))[: (count + 1) // 2]
    return paths[:count]
