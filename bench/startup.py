"""Launch → main window painted (source and frozen bundle), and `import tensorflow` alone.

Each launch is a fresh process (nothing warm but the OS file cache) run with
QT_QPA_PLATFORM=offscreen, throw-away settings and logs, and CXRVIEWER_EXIT_AFTER_SHOWN=1:
the viewer then prints `window painted at <unix time>` on stderr at its first paint and
closes; the parent subtracts its own clock at launch. The source launch is
`python -m cxrviewer`; the frozen one is the PyInstaller executable under dist/.

The warm-up launch runs bench/window_driver.py instead, which stamps the first paint the
same way and also reports whether TensorFlow had been imported by then (it must not be).
If the viewer does not print the line (an older build), the driver times every launch.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.timing import Timing

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "window_driver.py"
LAUNCH_TIMEOUT_S = 180.0
EXIT_AFTER_SHOWN_ENV = "CXRVIEWER_EXIT_AFTER_SHOWN"
PAINTED = re.compile(r"window painted at ([0-9]+(?:\.[0-9]*)?)")
IMPORT_TF = "import time; t = time.perf_counter(); import tensorflow; print(time.perf_counter() - t)"


@dataclass(frozen=True)
class StartupResult:
    window: Timing
    import_tensorflow: Timing
    tensorflow_loaded_before_paint: bool
    frozen_window: Timing | None
    frozen_skip_reason: str
    how: str


def _child_env(scratch: Path, exit_after_shown: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(scratch / "config"),   # QSettings: never the user's own
        "CXRVIEWER_LOG_DIR": str(scratch / "logs"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    if exit_after_shown:
        env[EXIT_AFTER_SHOWN_ENV] = "1"
    else:
        env.pop(EXIT_AFTER_SHOWN_ENV, None)
    return env


def _tail(text: str, limit: int = 400) -> str:
    return " ".join(text.strip().split())[-limit:] or "no output"


def launch_command(command: list[str], scratch: Path) -> float:
    """Seconds from launching `command` to the first paint it reports under CXRVIEWER_EXIT_AFTER_SHOWN=1."""
    start = time.time()
    done = subprocess.run(command, env=_child_env(scratch, True), capture_output=True, text=True,
                          timeout=LAUNCH_TIMEOUT_S, cwd=scratch)
    match = PAINTED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"{Path(command[0]).name} did not report its first paint "
                           f"(exit status {done.returncode}): {_tail(done.stderr)}")
    return float(match.group(1)) - start


def launch_driver(scratch: Path) -> tuple[float, bool]:
    """(seconds launch → first paint, TensorFlow imported by then) through bench/window_driver.py."""
    start = time.time()
    done = subprocess.run([sys.executable, str(DRIVER)], env=_child_env(scratch, False), capture_output=True,
                          text=True, timeout=LAUNCH_TIMEOUT_S, cwd=scratch)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {"error": _tail(done.stderr)}
    if "painted" not in report:
        raise RuntimeError(f"window driver failed: {report.get('error')}")
    return float(report["painted"]) - start, bool(report["tensorflow_loaded"])


def import_tensorflow_seconds(scratch: Path) -> float:
    done = subprocess.run([sys.executable, "-c", IMPORT_TF], env=_child_env(scratch, False),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def frozen_executable() -> Path | None:
    """The PyInstaller one-folder build's executable under dist/, if one was built."""
    dist = ROOT / "dist"
    for name in ("cxrviewer", "cxrviewer.exe"):
        for candidate in (dist / "cxrviewer" / name, dist / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def run(runs: int) -> StartupResult:
    """A driver launch (warm-up + TensorFlow check), then source launches interleaved with
    TensorFlow imports (same load for both), then the frozen bundle."""
    with tempfile.TemporaryDirectory(prefix="cxrbench-startup-") as folder:
        scratch = Path(folder)
        _, tf_loaded = launch_driver(scratch)
        source = [sys.executable, "-m", "cxrviewer"]
        how = "python -m cxrviewer with CXRVIEWER_EXIT_AFTER_SHOWN=1"
        try:
            launch_command(source, scratch)
        except RuntimeError as exc:
            how = f"bench/window_driver.py ({exc})"
        import_tensorflow_seconds(scratch)
        window, imports = [], []
        for _ in range(max(1, runs)):
            if how.startswith("python"):
                window.append(launch_command(source, scratch))
            else:
                seconds, loaded = launch_driver(scratch)
                window.append(seconds)
                tf_loaded = tf_loaded or loaded
            imports.append(import_tensorflow_seconds(scratch))
        frozen, reason = None, ""
        executable = frozen_executable()
        if executable is None:
            reason = "no frozen bundle under dist/ (build it with `make package`)"
        else:
            try:
                launch_command([str(executable)], scratch)
                frozen = Timing(tuple(launch_command([str(executable)], scratch) for _ in range(max(1, runs))))
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                reason = f"the bundle {executable} could not be timed: {exc}"
        return StartupResult(Timing(tuple(window)), Timing(tuple(imports)), tf_loaded, frozen, reason, how)
