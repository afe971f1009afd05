"""`python -m cxrviewer` — same as the `cxrviewer` command."""
from __future__ import annotations

from cxrviewer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
