"""Qt-free trainee features built on `cxrviewer.core`: the reads database and its comparisons
(`reads`), practice packets (`practice`), labels known from file or folder names (`known_label`),
training-data warnings (`ood`), the export sidecar/PDF (`export_view`, `pages`) and the
"hits over total" figures of the summaries (`rates`).

May import `cxrviewer.core` and the standard library; never Qt, `cxrviewer.ui`, `cxrviewer.state`,
the commands or the trainer. `core` never imports this package.
"""
from __future__ import annotations
