"""`cxrviewer selftest`: check that this installation (source, wheel or frozen app) works offline.

The logic lives in `cxrviewer.selftest`; this module only registers the command. Exit status
0 when every check passes, 1 otherwise (the report says which check failed and why).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cxrviewer.cli import EXIT_INTERNAL, EXIT_OK, subcommand


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="model to test (default: the bundled default model, or the one in "
                             "$CXRVIEWER_MODELS_DIR)")
    parser.add_argument("--save-overlay", type=Path, default=None, metavar="PNG",
                        help="also write the rendered overlay (with its caption) to this PNG")


@subcommand("selftest", help="check models, decoders, inference and rendering offline; exit 0 if all pass",
            configure=_configure)
def run_selftest(args: argparse.Namespace) -> int:
    from cxrviewer.selftest import run_selftest as run_checks

    report = run_checks(model_name=args.model, save_overlay=args.save_overlay)
    print(report.format(), flush=True)
    return EXIT_OK if report.passed else EXIT_INTERNAL
