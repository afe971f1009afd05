"""Test hooks run inside decode child processes (`DecodePool(child_setup="tests.robustness.decode_hooks:NAME")`).

Nothing in cxrviewer imports this module: a production child never has a hook.
"""
from __future__ import annotations

import time

HANG_MARKER = "hang-forever"
CRASH_MARKER = "crash-hard"


def hang_on_marker() -> None:
    """Make `core.io.load_image` (and `header_problem`, for the folder scan) sleep for ever for a
    file whose name contains HANG_MARKER, like a decoder plugin stuck in a loop; and make
    load_image die at once (like a segfault) for CRASH_MARKER."""
    import os

    from cxrviewer.core import io as core_io

    real = core_io.load_image

    def load_image(path, frame=0, **kwargs):
        name = os.fspath(path)
        if HANG_MARKER in name:
            while True:
                time.sleep(3600)
        if CRASH_MARKER in name:
            os._exit(139)
        return real(path, frame=frame, **kwargs)

    core_io.load_image = load_image

    real_header_problem = core_io.header_problem

    def header_problem(path):   # a header whose parsing never ends, for the folder scan
        if HANG_MARKER in os.fspath(path):
            while True:
                time.sleep(3600)
        return real_header_problem(path)

    core_io.header_problem = header_problem
