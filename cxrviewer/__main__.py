"""`python -m cxrviewer` — same as the `cxrviewer` command (and the frozen app's entry point)."""
from __future__ import annotations

import multiprocessing

if __name__ == "__main__":
    # In the PyInstaller app the inference worker process starts as this executable: let
    # multiprocessing take over that run before anything else happens.
    multiprocessing.freeze_support()
    from cxrviewer.cli import main

    raise SystemExit(main())
