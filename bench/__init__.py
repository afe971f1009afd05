"""Benchmarks that print figures and ratios against baselines measured in the same run.

Run `python bench/run.py` (add `--json` for one JSON object, `--quick` for tiny sizes).
Nothing here is imported by the viewer; tests never assert on timings.
"""
