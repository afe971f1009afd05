"""PySide6 widgets of the viewer: the top of `cli | commands | ui | state | teaching | core`.

Widgets render the Qt-free models in `cxrviewer.state` and send them intents; features
(`ui/features/`, the AI controller) get those models and a `ui.shell.Shell`, never the
MainWindow. Nothing here imports TensorFlow: the window must appear before the model loads.
"""
from __future__ import annotations
