"""Headless subcommands: `render`, `predict`, `screenshot`, `selftest` — one module each.

Layer: above `ui` (screenshot and the self-test open Qt), below `cxrviewer.cli`. Each module
registers itself with `_base.subcommand` when imported; `cxrviewer.cli` imports them all and
dispatches. Commands import `_base`, `core`, `teaching` and (lazily, inside run functions)
`ui`; never `cli`. Heavy imports (TensorFlow, Qt) stay inside run functions so that the
parser builds fast.
"""
from __future__ import annotations
