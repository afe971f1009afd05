"""`cxrviewer screenshot INPUT -o OUT.png`: the real main window with the AI result, as a PNG.

Opens MainWindow (offscreen when there is no display), loads INPUT, waits until the AI
prediction and heat map are drawn, and saves the whole window. A model failure, an
unreadable image or the timeout is a one-line error with exit status 2 — never a picture
of a window still saying "Loading…". Read first is off (the AI result is shown) unless
`--read-first` asks for the state before the trainee's call, whatever the user's setting.
`--anonymise` hides names, IDs and birth dates (corner text, study tree, tag dock) for
pictures that leave the workstation.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cxrviewer.commands._base import EXIT_OK, CliError, positive_float, subcommand
from cxrviewer.core.errors import printable_name, printable_path

DEFAULT_SIZE = (1400, 900)


def _window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1400x900, got {text!r}") from None
    if not (200 <= width <= 10000 and 200 <= height <= 10000):
        raise argparse.ArgumentTypeError(f"a window from 200x200 to 10000x10000, got {text}")
    return width, height


def _configure_screenshot(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="image file or folder to open")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--size", type=_window_size, default=DEFAULT_SIZE, metavar="WxH",
                        help="window size in pixels (default 1400x900)")
    parser.add_argument("--model", default=None, metavar="NAME", help="registered model (default: the default model)")
    parser.add_argument("--timeout", type=positive_float, default=600.0, metavar="S",
                        help="give up after S seconds (default 600: loading a model imports TensorFlow "
                             "and traces it once)")
    parser.add_argument("--read-first", action="store_true",
                        help="show read-first mode before the call: the AI result and heat map hidden")
    parser.add_argument("--anonymise", "--anonymize", action="store_true",
                        help="hide patient names, IDs and birth dates, as View > Anonymise Display does")


def use_offscreen_without_display() -> None:
    """Use Qt's offscreen platform when no display is available (CI, ssh)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


@subcommand("screenshot", help="save a PNG of the viewer window with the image and its AI heat map",
            configure=_configure_screenshot)
def run_screenshot(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() not in ("", ".png"):
        raise CliError(f"{printable_name(args.output.name)}: screenshots are written as PNG; use a .png name")
    if not args.input.exists():
        raise CliError(f"{printable_name(args.input.name)}: file or folder not found")
    use_offscreen_without_display()
    from cxrviewer.ui.shell.app import render_window_screenshot

    output = args.output if args.output.suffix else args.output.with_suffix(".png")
    render_window_screenshot(
        [args.input], output, size=args.size, timeout_ms=int(args.timeout * 1000),
        wait_for_ai=True, model=args.model, read_first=args.read_first, anonymise=args.anonymise,
    )
    print(printable_path(output), flush=True)
    return EXIT_OK
