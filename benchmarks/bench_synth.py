"""`degradekit synth` end to end: read the sources, degrade, encode PNGs, write tar shards, on 400 -> 100 patches
(x4, default `realesrgan` preset, 1 variant) of scikit-image's sample photos; plus the PNG level trade-off.

    pytest benchmarks/bench_synth.py --benchmark-only --benchmark-columns=min,median,max,rounds

Reported in each benchmark's extra_info (and printed): pairs/s (median round, wall clock), pairs per CPU-second
of rendering (independent of other load on a shared machine), bytes per pair, the share of rendering time spent
in PNG encoding and in the degradation, and the peak RSS of a worker process. The
"large" source set is the 8 photos copied 10x (80 files, 10x the samples): a worker's peak memory must not grow
with it, because a worker holds one source, one scaled copy and one sample at a time.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import degradekit
from degradekit.imageio import encode_png
from degradekit.synth.plan import Settings
from degradekit.synth.run import run_synth
from degradekit.synth.sources import resolve_sources


def _source_dir(tmp, copies: int):
    src = resolve_sources("sample")
    d = tmp / f"src{copies}"
    d.mkdir()
    for c in range(copies):
        for f in src.files:
            shutil.copy(f, d / f"c{c:02d}_{f.name}")
    return resolve_sources(str(d))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench_synth")
    return {"small": _source_dir(tmp, 1), "large": _source_dir(tmp, 10)}


SETTINGS = Settings(config=degradekit.preset("realesrgan"), patch=400, step=200, shard_size=8)


def _bench(benchmark, tmp_path, src, workers, rounds, label):
    results = []
    counter = iter(range(1000))

    def setup():
        out = tmp_path / f"out{next(counter)}"
        return (out,), {}

    def run(out):
        results.append(run_synth(src, SETTINGS, out, workers=workers, progress="none", log=lambda s: None))

    if not getattr(benchmark, "disabled", False):  # warm: Numba caches, OpenCV, page cache of the sources
        run(tmp_path / "warm")
        results.clear()
    benchmark.group = f"synth end to end ({label})"
    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1)
    secs = sorted(r.seconds for r in results)
    med = float(np.median(secs))
    r = results[0]
    pairs = r.pairs
    work = r.encode_seconds + r.degrade_seconds
    cpu = r.render_cpu_seconds
    info = {
        "workers": workers,
        "pairs": pairs,
        "pairs_per_s_median": pairs / med,
        "pairs_per_s_per_worker": pairs / med / workers,
        # load-independent: pairs per CPU-second of rendering (read + degrade + encode + write) in the workers
        "pairs_per_cpu_s": pairs / r.render_cpu_seconds,
        "bytes_per_pair": r.manifest["totals"]["bytes"] / pairs,
        "encode_share": r.encode_seconds / cpu,    # shares of the rendering CPU time
        "degrade_share": r.degrade_seconds / cpu,
        "encode_ms_per_pair": 1e3 * r.encode_seconds / pairs,
        "degrade_ms_per_pair": 1e3 * r.degrade_seconds / pairs,
        "other_ms_per_pair": 1e3 * (cpu - work) / pairs,
        "worker_peak_rss_mb": r.worker_peak_rss_mb,
    }
    benchmark.extra_info.update(info)
    print(f"\n{label}: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
    return info


def test_synth_small_1_worker(benchmark, sources, tmp_path):
    _bench(benchmark, tmp_path, sources["small"], 1, 5, "8 photos, 1 worker")


def test_synth_small_2_workers(benchmark, sources, tmp_path):
    _bench(benchmark, tmp_path, sources["small"], 2, 5, "8 photos, 2 workers")


def test_synth_large_1_worker(benchmark, sources, tmp_path):
    _bench(benchmark, tmp_path, sources["large"], 1, 1, "80 photos, 1 worker")


def test_synth_large_2_workers(benchmark, sources, tmp_path):
    _bench(benchmark, tmp_path, sources["large"], 2, 1, "80 photos, 2 workers")


# ------------------------------------------------------------------------------------------- PNG levels

@pytest.fixture(scope="module")
def pair():
    from skimage import data

    img = data.astronaut()
    hr = np.ascontiguousarray(img[56:456, 56:456])
    lr, _ = degradekit.degrade(hr, degradekit.preset(), 0)
    return {"hr400": hr, "lr100": lr}


@pytest.mark.parametrize("level", [0, 1, 3, 6, 9, 12])
@pytest.mark.parametrize("which", ["hr400", "lr100"])
def test_png_level(benchmark, pair, which, level):
    """Ours: level 1 = Paeth filter + our Huffman-only coder; 2-12 = Up filter + libdeflate; 0 = stored."""
    img = pair[which]
    benchmark.group = f"PNG encode {which}"
    data = benchmark(encode_png, img, level)
    assert encode_png(img, level) == data  # deterministic bytes
    benchmark.extra_info["bytes"] = len(data)
    print(f"\nPNG {which} level {level}: {len(data)} bytes")


@pytest.mark.parametrize("level", [1, 3, 9])
@pytest.mark.parametrize("which", ["hr400", "lr100"])
def test_png_libpng_baseline(benchmark, pair, which, level):
    """Baseline: OpenCV's PNG writer (libpng + zlib, adaptive filters) at `level`."""
    import cv2

    bgr = np.ascontiguousarray(pair[which][..., ::-1])
    benchmark.group = f"PNG encode {which}"
    buf = benchmark(lambda: cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, level])[1])
    benchmark.extra_info["bytes"] = len(buf)
    print(f"\nlibpng {which} level {level}: {len(buf)} bytes")


# ------------------------------------------------------------------------------------- durability (fsync)

@pytest.mark.parametrize("shard_size", [8, 1000])
@pytest.mark.parametrize("fsync", ["on", "off"])
def test_synth_fsync_cost(benchmark, sources, tmp_path, monkeypatch, fsync, shard_size):
    """What flushing costs: the same 1-worker run (in this process) with os.fsync real, and with it a no-op.
    Every shard, sidecar, manifest and state file is fsynced before its rename and its folder after it. The time
    spent inside fsync is also measured directly (fsync_share: of the run's wall time), which the shared
    machine's noise affects far less than the on/off difference. shard_size 8 (46 pairs -> 6 shards) is the
    worst case; 1000 is the default (one shard here)."""
    import dataclasses
    import os
    import time as _time

    calls, spent = [], []
    real = os.fsync

    def timed(fd):
        calls.append(fd)
        if fsync == "on":
            t = _time.perf_counter()
            real(fd)
            spent.append(_time.perf_counter() - t)

    monkeypatch.setattr(os, "fsync", timed)
    global SETTINGS
    saved = SETTINGS
    SETTINGS = dataclasses.replace(saved, shard_size=shard_size)
    try:
        info = _bench(benchmark, tmp_path, sources["small"], 1, 5, f"8 photos, 1 worker, shards of {shard_size}, "
                                                                  f"fsync {fsync}")
    finally:
        SETTINGS = saved
    benchmark.group = f"synth durability: fsync on / off (8 photos, 1 worker, shards of {shard_size})"
    runs = 6 if not getattr(benchmark, "disabled", False) else 1  # the warm-up run + 5 rounds
    run_s = 46 / info["pairs_per_s_median"]
    extra = {"fsync_calls_per_run": len(calls) / runs, "fsync_s_per_run": sum(spent) / runs,
             "fsync_share": sum(spent) / runs / run_s}
    benchmark.extra_info.update(extra)
    print(f"fsync {fsync}, shards of {shard_size}: " + ", ".join(f"{k}={v:.3g}" for k, v in extra.items()))
