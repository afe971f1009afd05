"""The PySide6 layer: the window, the viewer canvas, docks, dialogs and feature controllers.

Layers: cli | commands | **ui** | state | teaching | core. `ui` may import `state`,
`teaching` and `core`; nothing below imports `ui`, and only `commands` and `cli` above it do.
Widgets show and edit the Qt-free models of `cxrviewer.state`; policy (which request to
send, what is stale, what the read-first flow allows) lives there, not in widgets. Features
(`features/`) get those models and a small `Shell` protocol (`shell/protocol.py`), never the window.

Sub-packages: `shell/` (the app, main window, actions and menus, settings, theme),
`viewer/` (canvas and what is drawn on it), `workers/` (Qt bridges to threads and the
inference process), `docks/`, `dialogs/`, `widgets/` (small reusable widgets) and
`features/` (controllers).

Nothing here imports TensorFlow: the window must appear before the model loads (the model
runs in the inference worker process, `core.inference`).
"""
from __future__ import annotations
