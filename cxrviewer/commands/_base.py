"""What every subcommand shares: the registry (`@subcommand`), exit codes, `CliError`,
argparse argument types, the model lookup (`load_engine`) and the native-stderr capture.

`cxrviewer.cli` imports the command modules (which register themselves here) and runs them;
nothing here imports `cli`, so there is no import cycle. Heavy imports stay inside functions.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxrviewer.core.errors import CxrError

if TYPE_CHECKING:
    from cxrviewer.core.model.engine import ModelEngine

log = logging.getLogger("cxrviewer.cli")

PROG = "cxrviewer"
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER_ERROR = 2

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


class CliError(CxrError):
    """A problem with the command's own arguments or outputs (e.g. an unwritable output file)."""


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Configure
    run: Run
    quiet_native_stderr: bool = True   # C libraries' stderr chatter goes to the log


_SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str, help: str, configure: Configure, quiet_native_stderr: bool = True
) -> Callable[[Run], Run]:
    """Register `run` as `cxrviewer <name>`; `configure` adds its arguments.

    With `quiet_native_stderr` (the default) anything C libraries print on stderr while the
    command runs (libpng, libjpeg, TensorFlow) is moved into the log, so that a failure shows
    exactly one line. Turn it off for commands that report progress on stderr.
    """

    def register(run: Run) -> Run:
        if name in _SUBCOMMANDS:
            raise ValueError(f"subcommand {name!r} registered twice")
        _SUBCOMMANDS[name] = Subcommand(name, help, configure, run, quiet_native_stderr)
        return run

    return register


def subcommands() -> tuple[Subcommand, ...]:
    """Every registered subcommand, in registration order."""
    return tuple(_SUBCOMMANDS.values())


def subcommand_names() -> tuple[str, ...]:
    return tuple(_SUBCOMMANDS)


def find_subcommand(name: str) -> Subcommand:
    return _SUBCOMMANDS[name]


@contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Redirect file descriptor 2 to a temporary file while the body runs; log what was written.

    Process-wide, so only for the single-threaded command line, never inside the GUI.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace").strip()
            if text:
                log.info("messages from native libraries:\n%s", text)


# --------------------------------------------------------------------------- argument types

def _number(text: str, kind: type[int] | type[float], expected: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    """A whole number ≥ 1."""
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def frame_index(text: str) -> int:
    """A whole number ≥ 0."""
    value = int(_number(text, int, "a whole number"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _number(text, float, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1."""
    value = _number(text, float, "a number from 0 to 1")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value:g}")
    return value


# --------------------------------------------------------------------------- the model

def load_engine(name_or_folder: str | None) -> ModelEngine:
    """The model to run: a registered name, a model folder, or (None) the default model — in the
    same engine as the viewer's worker (ONNX Runtime first, TensorFlow for other layers).

    Every failure is a CxrError with a one-line reason, so the command exits with status 2.
    """
    from cxrviewer.core.model.engine import open_model

    try:
        return open_model(name_or_folder or "", trace_lazily=True)
    except LookupError as exc:
        raise CliError(str(exc.args[0] if exc.args else exc)) from exc
