"""The project's one exception family: messages a radiology trainee can act on."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

# Unicode categories shown escaped in file names: controls (Cc), format characters such as the
# bidi overrides U+202E and U+2066..2069 (Cf), undecodable bytes (Cs), line/paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable_name(name: str | os.PathLike[str]) -> str:
    """A file name safe to print on one line: control, bidi and undecodable characters escaped.

    A right-to-left override in "x\u202egnp.dcm" would show the name as "xmcd.png" and fake the
    extension in an error line; a newline would split it. Undecodable bytes (kept by Python as
    surrogate escapes) become "\xff", so the result is always valid UTF-8.
    """
    text = os.fspath(name) if not isinstance(name, str) else name
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    out: list[str] = []
    for char in text:
        if unicodedata.category(char) not in _ESCAPED_CATEGORIES:
            out.append(char)
            continue
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:          # surrogateescape of one undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (undecodable bytes of a file name) written as "\\xff",
    so that it encodes to valid UTF-8 (for JSON output, which must be valid UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable_path(path: str | os.PathLike[str]) -> str:
    """`printable_name` of a whole path."""
    return printable_name(os.fspath(path))


class CxrError(Exception):
    """Base class of every error cxrviewer reports to a user."""


class ImageLoadError(CxrError):
    """An image file could not be opened; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{printable_name(self.path.name)}: {reason}")


class ModelLoadError(CxrError):
    """A bundled or user model could not be loaded (missing, tampered, incompatible)."""


class InferenceError(CxrError):
    """A prediction or heat map could not be computed."""
