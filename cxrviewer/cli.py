"""Command line: `cxrviewer [PATH ...]` opens the viewer; `cxrviewer <command> ...` runs headless.

The top layer: `main()` and what it needs to parse and dispatch. The subcommands live in
`cxrviewer.commands` (one module each, registered with `commands._base.subcommand`); this
module imports them so that they register, and nothing imports this module back.

Errors the user can act on (`CxrError`) print exactly one line,
`cxrviewer: error: <file>: <reason>`, and exit with status 2; the traceback goes to the log.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from cxrviewer import NOT_FOR_CLINICAL_USE, __version__

# each command module registers its subcommand when imported, in this (help) order
from cxrviewer.commands import predict, render, screenshot, selftest  # noqa: F401
from cxrviewer.commands._base import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USER_ERROR,
    PROG,
    find_subcommand,
    native_stderr_to_log,
    subcommand_names,
    subcommands,
)
from cxrviewer.core.errors import CxrError

log = logging.getLogger(__name__)


def launch_gui(paths: Sequence[str]) -> int:
    """Open the viewer (Qt is imported only here, lazily)."""
    app = importlib.import_module("cxrviewer.ui.shell.app")
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
    for command in subcommands():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
    return parser


def _build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Open the viewer.")
    parser.add_argument("paths", nargs="*", help="images or folders to open")
    return parser


def report_error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def _is_command_line(argv: Sequence[str]) -> bool:
    """A known command or a top-level option like --help; anything else means the GUI."""
    return bool(argv) and (argv[0] in subcommand_names() or argv[0] in ("-h", "--help", "--version"))


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
        command = find_subcommand(args.command)
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
