"""PySide6 widgets of the viewer. Talks to `cxrviewer.core` through plain calls and signals.

Nothing here imports TensorFlow: the window must appear before the model loads.
"""
from __future__ import annotations
