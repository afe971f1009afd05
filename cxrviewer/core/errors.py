"""The project's one exception family: messages a radiology trainee can act on."""
from __future__ import annotations

from pathlib import Path


class CxrError(Exception):
    """Base class of every error cxrviewer reports to a user."""


class ImageLoadError(CxrError):
    """An image file could not be opened; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


class ModelLoadError(CxrError):
    """A bundled or user model could not be loaded (missing, tampered, incompatible)."""


class InferenceError(CxrError):
    """A prediction or heat map could not be computed."""
