"""cxrviewer: offline chest X-ray viewer with an AI second reader.

For teaching and research only — not a medical device, not for clinical use.

Layers, top to bottom; each imports only the layers below it (import-linter `layers`
contract in pyproject.toml, checked by `make lint`):

    cli        `cxrviewer` entry point: main() parses and dispatches, nothing else
    commands   headless subcommands (render, predict, screenshot, selftest) and their registry
    ui         PySide6 widgets and feature controllers
    state      Qt-free evented application state the widgets bind to
    teaching   Qt-free trainee features: reads, practice packets, known labels, exports, OOD warnings
    core       Qt-free imaging, model and explanation pipeline; `core.labels` is shared with the trainer

The `trainer` package (training the bundled models) imports `core` alone (it scores external
data with `core.model.batch`, the runner `cxrviewer predict` uses), never the commands, UI or state.
"""
from __future__ import annotations

__version__ = "0.1.0"

NOT_FOR_CLINICAL_USE = "For teaching and research — not for clinical use"
