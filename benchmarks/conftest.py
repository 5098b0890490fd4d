"""Benchmark configuration: one core, fixed inputs, bench_*.py collection, and an ours/baseline ratio table.

Run (the figures in docs/performance.md, "Degradation engine"):

    taskset -c 0 pytest benchmarks/ --benchmark-only --benchmark-columns=min,median,mean,rounds
    pytest benchmarks/ --benchmark-disable -q      # quick smoke run: every benchmark body once
"""

from __future__ import annotations

import cv2
import numba
import numpy as np
import pytest

# One core: OpenCV and Numba would otherwise use a thread pool (torch plays no part in the engine).
cv2.setNumThreads(1)
numba.set_num_threads(1)


def pytest_collect_file(file_path, parent):
    # The suites are named bench_*.py so that the default `pytest` run (testpaths = tests) never sees them.
    # (A file named on the command line is collected by pytest itself: do not collect it twice.)
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def hr400() -> np.ndarray:
    """uint8 400x400x3 RGB: the centre crop of scikit-image's astronaut (a Real-ESRGAN training-crop size)."""
    from skimage import data

    img = data.astronaut()
    h, w, _ = img.shape
    y, x = (h - 400) // 2, (w - 400) // 2
    return np.ascontiguousarray(img[y:y + 400, x:x + 400])


@pytest.fixture(scope="session")
def img400(hr400) -> np.ndarray:
    """The same crop as float32 in [0, 1]."""
    return hr400.astype(np.float32) / np.float32(255)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print, per benchmark group, the medians of ``ours`` and ``baseline`` and their ratio, plus the ratio of
    the interleaved timing that the engine benches record in extra_info (robust to load changes)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or getattr(session, "disabled", True):
        return
    groups: dict[str, dict] = {}
    for bench in getattr(session, "benchmarks", []):
        stats = getattr(bench, "stats", None)
        if stats is None or not bench.group:
            continue
        role = "baseline" if "baseline" in bench.name else "ours"
        g = groups.setdefault(bench.group, {})
        g[role] = stats.median
        extra = getattr(bench, "extra_info", None) or {}
        if "interleaved_ours_ms" in extra:
            g["inter"] = extra["interleaved_ours_ms"] / extra["interleaved_baseline_ms"]
    rows = [(name, g) for name, g in sorted(groups.items()) if "ours" in g]
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("-", "benchmark medians: ours vs the best single OpenCV/NumPy primitive (where a group has one)")
    tr.write_line(f"{'group':40s} {'ours ms':>9s} {'baseline ms':>12s} {'ratio':>6s} {'interleaved':>12s}")
    for name, g in rows:
        base = g.get("baseline")
        b = f"{base * 1e3:12.2f}" if base else f"{'-':>12s}"
        r = f"{g['ours'] / base:6.2f}" if base else f"{'-':>6s}"
        i = f"{g['inter']:12.2f}" if "inter" in g else f"{'-':>12s}"
        tr.write_line(f"{name:40s} {g['ours'] * 1e3:9.2f} {b} {r} {i}")
