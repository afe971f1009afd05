"""Find bundled resources (models, fonts, icons) from a source checkout, a wheel or a frozen app."""
from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES_ENV = "CXRVIEWER_RESOURCES"


def resources_dir() -> Path:
    """The `resources/` folder: $CXRVIEWER_RESOURCES, PyInstaller's bundle, or the checkout."""
    override = os.environ.get(RESOURCES_ENV)
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    package_resources = Path(__file__).resolve().parents[1] / "resources"
    if package_resources.is_dir():
        return package_resources
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
