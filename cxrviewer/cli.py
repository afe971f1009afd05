"""Command line: `cxrviewer [PATH ...]` opens the viewer; `cxrviewer <command> ...` runs headless.

Subcommands are registered with the `@subcommand(...)` decorator below: each has a function
that adds its arguments to an argparse parser and a function that runs it and returns the
exit status. Heavy imports (TensorFlow, Qt) belong inside the run functions so that
`cxrviewer render` stays fast.

Errors the user can act on (`CxrError`) print exactly one line,
`cxrviewer: error: <file>: <reason>`, and exit with status 2; the traceback goes to the log.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__
from cxrviewer.core.errors import CxrError, printable_name

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

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


def subcommand_names() -> tuple[str, ...]:
    return tuple(_SUBCOMMANDS)


# --------------------------------------------------------------------------- render

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def _frame_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _configure_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="DICOM, PNG, JPEG, TIFF or BMP file")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output image (PNG; .jpg/.tif/.bmp also work)")
    parser.add_argument("--frame", type=_frame_index, default=0,
                        help="frame of a multi-frame file, counted from 0 (default 0)")
    parser.add_argument("--size", type=_positive_int, default=None, metavar="PX",
                        help="scale so that the longest side is PX pixels (aspect ratio kept)")
    from cxrviewer.commands.render_overlay import add_overlay_arguments

    add_overlay_arguments(parser)


def fit_longest_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an 8-bit image so its longest side is `size` pixels, keeping the aspect ratio."""
    import cv2

    rows, columns = image.shape[:2]
    scale = size / max(rows, columns)
    new_rows = max(1, round(rows * scale))
    new_columns = max(1, round(columns * scale))
    if (new_rows, new_columns) == (rows, columns):
        return image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (new_columns, new_rows), interpolation=interpolation)


def write_image(path: Path, image: np.ndarray) -> None:
    """Encode by the file's suffix (PNG when it has none) and write; works with any path."""
    import cv2

    suffix = path.suffix.lower() or ".png"
    if suffix not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        raise CliError(f"{printable_name(path.name)}: cannot write {printable_name(suffix)} files; use .png")
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise CliError(f"{printable_name(path.name)}: the image could not be encoded as {printable_name(suffix)}")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise CliError(f"{printable_name(path.name)}: cannot write the output file ({exc.strerror or exc})") from exc


@subcommand("render", help="write the image as the viewer first shows it (8-bit gray PNG)",
            configure=_configure_render)
def run_render(args: argparse.Namespace) -> int:
    """Load, apply the default window and polarity (imaging.default_display), resize, write."""
    from cxrviewer.core.imaging import default_display
    from cxrviewer.core.io import load_image

    from cxrviewer.commands.render_overlay import overlay_requested, render_with_overlay

    image = load_image(args.input, frame=args.frame)
    read_first = overlay_requested(args) and args.read_first
    if overlay_requested(args) and not read_first:
        import cv2

        display = cv2.cvtColor(render_with_overlay(image, args), cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    else:
        display = default_display(image)     # read first: the trainee sees the film alone
    if args.size is not None:
        display = fit_longest_side(display, args.size)
    if read_first:
        from cxrviewer.commands.render_overlay import READ_FIRST_CAPTION, add_caption_band

        display = add_caption_band(display)
        print(READ_FIRST_CAPTION.replace(" - ", " — "), flush=True)
    write_image(args.output, display)
    log.info("rendered %s -> %s (%s)", args.input, args.output, "x".join(map(str, display.shape)))
    return EXIT_OK


# --------------------------------------------------------------------------- other subcommands
# `predict`, `screenshot` and `selftest` register here the same way as `render`:
#
#     def _configure_predict(parser): parser.add_argument(...)
#
#     @subcommand("predict", help="...", configure=_configure_predict)
#     def run_predict(args):
#         from cxrviewer.core.model import ...   # import heavy things lazily
#         ...
#         return EXIT_OK


import cxrviewer.commands.selftest  # noqa: E402,F401 - registers `selftest`


# Commands that live in their own modules register themselves when imported.
from cxrviewer.commands import predict as _predict, screenshot as _screenshot  # noqa: E402,F401

# --------------------------------------------------------------------------- GUI and main

def launch_gui(paths: Sequence[str]) -> int:
    """Open the viewer (Qt is imported only here, lazily)."""
    app = importlib.import_module("cxrviewer.ui.app")
    result = app.run(list(paths))
    return int(result) if isinstance(result, int) else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=f"Offline chest X-ray viewer. {NOT_FOR_CLINICAL_USE}.",
        epilog=f"Without a command, opens the viewer: {PROG} [PATH ...] (files or folders).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
    return parser


def _build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Open the viewer.")
    parser.add_argument("paths", nargs="*", help="images or folders to open")
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def report_error(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


def _is_command_line(argv: Sequence[str]) -> bool:
    """A known command or a top-level option like --help; anything else means the GUI."""
    return bool(argv) and (argv[0] in _SUBCOMMANDS or argv[0] in ("-h", "--help", "--version"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cxrviewer` script; returns the process exit status."""
    from cxrviewer.core.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        log_path = setup_logging()
    except Exception:  # noqa: BLE001 - no log file must never stop the program
        log_path = None
    try:
        if not _is_command_line(argv):
            gui_args = _build_gui_parser().parse_args(argv)
            return launch_gui(gui_args.paths)
        args = build_parser().parse_args(argv)
        command = _SUBCOMMANDS[args.command]
        with native_stderr_to_log() if command.quiet_native_stderr else nullcontext():
            return int(command.run(args))
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USER_ERROR)
    except CxrError as exc:
        log.info("command failed: %s", argv, exc_info=True)
        report_error(str(exc))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, traceback in the log
        log.exception("unexpected error running %s", argv)
        where = f"; details in {log_path}" if log_path else ""
        report_error(f"unexpected {type(exc).__name__}: {exc}{where}")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
