"""Smoke test of bench/run.py: `--quick --json` runs every section and reports every figure and ratio.

Timings are never asserted (they mean nothing at tiny sizes on a shared machine); what is
checked is that the benchmark runs end to end through the real code paths and that every
ratio it prints is a usable number.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"

pytestmark = pytest.mark.slow


def _load_run_module():
    name = "bench_run_for_test"
    spec = importlib.util.spec_from_file_location(name, RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _onnx_tools_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tf2onnx"))


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("bench-home")
    env = dict(os.environ)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(home / "config"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    done = subprocess.run([sys.executable, str(RUN), "--quick", "--json"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_quick_run_reports_every_figure_and_ratio(quick_report: dict) -> None:
    run = _load_run_module()
    assert set(quick_report["figures"]) == set(run.FIGURES)
    assert set(quick_report["ratios"]) == set(run.RATIOS)
    skipped = quick_report["skipped"]
    for name, value in quick_report["figures"].items():
        if value is None:
            assert skipped.get(name), f"figure {name} is missing without a reason"
        else:
            assert math.isfinite(value), f"figure {name} = {value}"


def test_every_ratio_is_a_positive_finite_number(quick_report: dict) -> None:
    optional = set() if _onnx_tools_installed() else {"forward_vs_onnxruntime"}
    for name, value in quick_report["ratios"].items():
        if value is None and name in optional:
            assert "onnx" in quick_report["skipped"][name].lower()
            continue
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, f"ratio {name} = {value}"


def test_quick_run_judges_the_viewer_paths(quick_report: dict) -> None:
    figures = quick_report["figures"]
    # opacity goes to the overlay item's opacity: no re-colouring at all
    assert figures["opacity_change_recolours"] == 0
    # the window is painted before TensorFlow is imported
    assert quick_report["config"]["tensorflow_loaded_before_paint"] is False
    # memory is measured on as many images as asked for
    assert "6 synthetic" in quick_report["config"]["memory"]
    assert quick_report["settings"]["quick"] is True


def test_quick_run_measures_the_ai_session_with_the_bundled_model(quick_report: dict) -> None:
    figures = quick_report["figures"]
    for name in ("ai_ready_s", "layer_change_s", "model_switch_s", "max_gui_stall_ms", "quit_s"):
        assert figures[name] is not None and figures[name] > 0, name
    phases = quick_report["config"]["gui_stall_ms_by_phase"]
    assert {"start", "layer_change", "model_switch"} <= set(phases)
    assert not any("imported TensorFlow" in note for note in quick_report["notes"])
