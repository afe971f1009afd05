"""One-page documents (the case report, the packet score sheet): one way to write a figure to disk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__
from cxrviewer.core.errors import CxrError

PAGE_SUFFIXES = (".pdf", ".png", ".svg")   # what `save_page` writes, the first the default


def page_path(path: str | Path, suffixes: tuple[str, ...] = PAGE_SUFFIXES) -> Path:
    """`path` as given when its suffix is one of `suffixes` (any case), else with the first of them."""
    path = Path(path)
    return path if path.suffix.lower() in suffixes else path.with_suffix(suffixes[0])


def save_page(figure: Any, path: Path, title: str, what: str, error: type[CxrError], dpi: int = 150) -> Path:
    """PDF (or PNG/SVG by the suffix) with the app's metadata; `error("<file>: the <what> could not be written")`."""
    fmt = path.suffix.lower().lstrip(".") or "pdf"
    metadata = ({"Title": title, "Creator": f"cxrviewer {__version__}", "Subject": NOT_FOR_CLINICAL_USE}
                if fmt == "pdf" else None)
    try:
        figure.savefig(path, format=fmt, dpi=dpi, metadata=metadata)
    except (OSError, ValueError) as exc:
        raise error(f"{path.name}: the {what} could not be written ({exc})") from exc
    return path
