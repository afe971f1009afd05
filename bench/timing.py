"""Timing and memory helpers shared by the benchmarks.

Every figure is the median of several runs after warm-up. A ratio is the median over
rounds of (candidate / baseline) where both were timed back to back in the same round:
on a busy machine (a training run in the background) load drifts over seconds, and a
per-round ratio cancels most of that drift where a ratio of two medians would not.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds of each measured run (warm-up runs excluded)."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def best(self) -> float:
        return min(self.runs)


def time_call(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(function: Callable[[], object], runs: int, warmup: int = 1) -> Timing:
    """Call `function` `warmup` times untimed, then `runs` times timed."""
    for _ in range(warmup):
        function()
    return Timing(tuple(time_call(function) for _ in range(max(1, runs))))


def interleaved(functions: Mapping[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, Timing]:
    """Time several functions round-robin (one call of each per round), after warm-up."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(max(1, runs)):
        for name, function in functions.items():
            times[name].append(time_call(function))
    return {name: Timing(tuple(values)) for name, values in times.items()}


def paired_ratio(candidate: Timing, baseline: Timing) -> float:
    """Median over rounds of candidate/baseline (same-round pairs)."""
    pairs = [c / b for c, b in zip(candidate.runs, baseline.runs) if b > 0]
    return statistics.median(pairs) if pairs else math.nan


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc, else psutil, else ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import psutil  # optional

        return psutil.Process(os.getpid()).memory_info().rss / 2**20
    except ImportError:
        import resource  # peak, not current: the best that is left

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0
