"""The alternate timing the benchmark suites record beside pytest-benchmark's own figures.

On a shared machine the two pytest-benchmark entries of a group (ours, baseline) run seconds apart under
different load; pairs timed alternately do not. conftest.py prints the ratio of these medians as the
``interleaved`` column.
"""
from __future__ import annotations

import time

import numpy as np


def record_interleaved(benchmark, ours, baseline, n: int) -> None:
    """Time ``ours()`` then ``baseline()`` ``n`` times (perf_counter) and store both medians, in ms, in
    ``benchmark.extra_info`` as ``interleaved_ours_ms`` / ``interleaved_baseline_ms``."""
    a, b = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        baseline()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    benchmark.extra_info["interleaved_ours_ms"] = float(np.median(a) * 1e3)
    benchmark.extra_info["interleaved_baseline_ms"] = float(np.median(b) * 1e3)
