"""Qt-free trainee features built on `cxrviewer.core`: the reads database and its comparisons
(`reads`), practice packets (`practice`), labels known from file or folder names (`known_label`),
training-data warnings (`ood`) and the export sidecar/PDF (`export_view`).

May import `cxrviewer.core` and the standard library; never Qt, `cxrviewer.ui`, `cxrviewer.state`,
the commands or the trainer. `core` never imports this package.
"""
from __future__ import annotations
