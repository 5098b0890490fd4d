"""Benchmark configuration: one core, fixed inputs, bench_*.py collection, and an ours/baseline ratio table.

Run (the figures in README "Measured performance / Degradation engine"):

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
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
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
    """Print median(ours) / median(baseline) for every benchmark group that has both."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or getattr(session, "disabled", True):
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in getattr(session, "benchmarks", []):
        stats = getattr(bench, "stats", None)
        if stats is None or not bench.group:
            continue
        role = "baseline" if "baseline" in bench.name else "ours"
        groups.setdefault(bench.group, {})[role] = stats.median
    rows = [(g, r["ours"], r.get("baseline")) for g, r in sorted(groups.items()) if "ours" in r]
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("-", "degradekit engine: medians, ours vs the best single OpenCV/NumPy primitive")
    tr.write_line(f"{'group':38s} {'ours ms':>9s} {'baseline ms':>12s} {'ratio':>6s}")
    for g, ours, base in rows:
        if base is None:
            tr.write_line(f"{g:38s} {ours * 1e3:9.2f} {'-':>12s} {'-':>6s}")
        else:
            tr.write_line(f"{g:38s} {ours * 1e3:9.2f} {base * 1e3:12.2f} {ours / base:6.2f}")
