"""The frozen app in dist/cxrviewer (built by `make package`): self-test offline, first paint, contents.

Runs only when dist/cxrviewer/cxrviewer exists or CXRVIEWER_TEST_FROZEN=1 (then a missing build
is a failure, not a skip). `make package-check` builds and runs these.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist" / "cxrviewer"
EXE = DIST / "cxrviewer"
INTERNAL = DIST / "_internal"
FROZEN_ENV = "CXRVIEWER_TEST_FROZEN"
TIMEOUT = 900   # seconds; a cold TensorFlow import on a loaded 2-core machine takes minutes

pytestmark = pytest.mark.skipif(
    not EXE.exists() and os.environ.get(FROZEN_ENV) != "1",
    reason="no frozen app in dist/cxrviewer: run `make package` (CXRVIEWER_TEST_FROZEN=1 requires it)",
)


@pytest.fixture(scope="module")
def exe() -> Path:
    if not EXE.is_file():
        pytest.fail(f"{FROZEN_ENV}=1 but {EXE} was not built (run `make package`)")
    return EXE


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The user's environment minus the overrides that would hide the bundle's own resources."""
    clean = {key: value for key, value in os.environ.items()
             if key not in ("CXRVIEWER_MODELS_DIR", "CXRVIEWER_RESOURCES", "CXRVIEWER_BLOCK_NETWORK",
                            "PYTHONPATH", "PYTHONHOME")}
    clean.update(QT_QPA_PLATFORM="offscreen", CXRVIEWER_LOG_DIR=str(tmp_path / "logs"),
                 XDG_CONFIG_HOME=str(tmp_path / "config"))
    return clean


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def offline(env: dict[str, str]) -> tuple[list[str], str]:
    """A command prefix that runs without a network (new network namespace), else the env-var block."""
    for prefix in (["unshare", "-n"], ["unshare", "-r", "-n"]):
        if _works(prefix):
            return prefix, "loopback only"
    env["CXRVIEWER_BLOCK_NETWORK"] = "1"
    return [], "Python sockets blocked"


def test_selftest_passes_with_networking_blocked(exe, env, capsys):
    prefix, expected_network = offline(env)
    start = time.perf_counter()
    result = subprocess.run(prefix + [str(exe), "selftest"], env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nfrozen selftest ({' '.join(prefix) or 'sockets blocked'}): {seconds:.1f} s\n{result.stdout}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "frozen app" in result.stdout
    assert f"resources: {INTERNAL / 'resources'}" in result.stdout
    assert expected_network in result.stdout
    assert "self-test passed" in result.stdout
    assert "plugins pydicom, pylibjpeg agree" in result.stdout       # pylibjpeg-rle entry point
    assert "gdcm, pillow, pylibjpeg agree" in result.stdout          # pylibjpeg-openjpeg entry point


def test_selftest_without_a_model_says_no_bundled_model(exe, env, tmp_path):
    env["CXRVIEWER_MODELS_DIR"] = str(tmp_path)
    result = subprocess.run([str(exe), "selftest"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1
    assert "no bundled model" in result.stdout


def test_window_is_painted_and_the_app_exits(exe, env, tmp_path, capsys):
    env.update(CXRVIEWER_EXIT_AFTER_SHOWN="1", CXRVIEWER_MODELS_DIR=str(tmp_path))  # no model: quick exit
    start = time.time()
    result = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    painted = [line for line in result.stderr.splitlines() if "window painted at" in line]
    assert result.returncode == 0, result.stderr
    assert painted, result.stderr
    with capsys.disabled():
        print(f"\nfrozen GUI first paint after {float(painted[0].split()[-1]) - start:.1f} s")


def test_bundle_contents(exe):
    assert (INTERNAL / "resources" / "fonts" / "DejaVuSans.ttf").is_file()
    assert (INTERNAL / "resources" / "selftest" / "manifest.json").is_file()
    assert (INTERNAL / "resources" / "colormaps" / "colormaps.npz").is_file()
    for plugin in ("pylibjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle"):
        assert list(INTERNAL.glob(f"{plugin}-*.dist-info")), f"{plugin} metadata (entry points) not bundled"
    assert list(INTERNAL.glob("pylibjpeg_openjpeg-*.dist-info/entry_points.txt"))
    assert (INTERNAL / "onnxruntime").is_dir(), "ONNX Runtime (the worker's fast path) is not bundled"
    for model in ("pneumonia3", "covid3"):
        for name in ("model.onnx", "head.npz", "ood.npz"):
            assert (INTERNAL / "resources" / "models" / model / name).is_file(), f"{model}/{name} not bundled"
    for excluded in ("jax", "torch", "tensorboard", "scipy", "sklearn", "onnx", "tf2onnx",
                     "pytest", "_pytest", "hypothesis", "trainer", "libjpeg", "PyInstaller"):
        assert not (INTERNAL / excluded).exists(), f"{excluded} should not be bundled"
    gpl_files = [path.name for path in INTERNAL.rglob("*") if path.name.startswith(("libreadline", "libgdbm"))
                 or path.name.startswith("readline.cpython")]
    assert gpl_files == []


def test_third_party_licenses_are_listed(exe):
    listing = (DIST / "THIRD_PARTY_LICENSES").read_text(encoding="utf-8")
    names = {line.split()[1] for line in listing.splitlines() if line.startswith("== ")}
    assert {"tensorflow_cpu", "keras", "PySide6_Essentials", "pydicom", "pylibjpeg-openjpeg",
            "pylibjpeg-rle", "pyjpegls", "numpy", "Python"} <= names
    assert "pylibjpeg-libjpeg" not in names
