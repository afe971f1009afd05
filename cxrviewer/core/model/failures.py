"""One-line, trainee-readable descriptions of unexpected model failures (load, predict, check).

TensorFlow's messages can run to hundreds of lines of graph context, and a bare MemoryError
has no message at all; the AI panel shows one line, the full traceback goes to the log.
"""
from __future__ import annotations

from cxrviewer.core.model.device import FORCE_CPU_ENV

MAX_DETAIL_CHARS = 240
_OUT_OF_MEMORY = ("ResourceExhaustedError", "OutOfMemoryError")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ in _OUT_OF_MEMORY


def describe_model_failure(doing: str, exc: BaseException) -> str:
    """'<doing>: <what went wrong>' in one line, e.g. 'the AI result could not be computed: …'."""
    detail = _first_line(exc)
    if is_out_of_memory(exc):
        return (f"{doing}: the computer (or the GPU) ran out of memory"
                + (f" ({detail})" if detail else "")
                + f". Close other programs and retry; on a small GPU, start the viewer with "
                  f"{FORCE_CPU_ENV}=1 to use the CPU.")
    return f"{doing}: {type(exc).__name__}: {detail or 'no details'} (details in the log)"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return ""
    detail = lines[0]
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 1] + "…"
