"""`trainer fit` reading folders vs shards vs LMDB: pairs/s of one loader process (= per DataLoader worker).

    pytest benchmarks/bench_loader.py --benchmark-only --benchmark-columns=min,median,mean,rounds

The same 93 samples (a real synth folder, 400x400 HR / 100x100 LR level-1 PNGs, variant 0) read three ways:
the shards (ShardDataset), their `degradekit export --format folders` (PairDataset over hr/ lr/), and their
`--format lmdb` export (PairDataset over hr.lmdb lr.lmdb). One epoch per round through the training loader's
whole path (read, decode both PNGs, 256/64 random crop with the USM context, flips, CHW tensors), in the calling
process, so the figure is what one DataLoader worker delivers. ``extra_info["pairs_per_s_median"]``.
"""
from __future__ import annotations

import json

import cv2
import pytest
import torch
from click.testing import CliRunner

from cli import degradekit as cli
from degradekit.synth.export import export
from trainer.data import ShardDataset, expand_urls
from trainer.losses import USM_CONTEXT
from trainer.pairs import PairDataset, PairSource


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("bench_loader")
    out = base / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", "sample", "--out", str(out), "--patch", "400", "--step", "100",
                                 "--max-pixels", "1000000", "--shard-size", "16", "--variants", "1",
                                 "--workers", "1", "--progress", "none", "--seed", "3"])
    assert r.exit_code in (0, 3), r.output
    export(out, base / "f", fmt="folders")
    d = {"shards": expand_urls(str(out)), "folders": PairSource.open(base / "f/hr", base / "f/lr"),
         "n": json.loads((out / "manifest.json").read_text())["n_samples"]}
    try:
        import lmdb  # noqa: F401
        export(out, base / "l", fmt="lmdb")
        d["lmdb"] = PairSource.open(base / "l/hr.lmdb", base / "l/lr.lmdb")
    except ImportError:
        pass
    return d


@pytest.mark.parametrize("kind", ["shards", "folders", "lmdb"])
def test_loader_pairs_per_second_per_worker(benchmark, data, kind):
    if kind not in data:
        pytest.skip("lmdb package not installed")
    cv2.setNumThreads(1)                # as in a DataLoader worker
    torch.set_num_threads(1)
    kw = dict(gt_size=256, scale=4, seed=0, context=USM_CONTEXT, max_epochs=1)

    def run():
        ds = ShardDataset(data["shards"], **kw) if kind == "shards" else PairDataset(data[kind], **kw)
        n = sum(1 for _ in ds)
        assert n == data["n"]

    benchmark.group = "loader-per-worker"
    benchmark.name = kind
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats:                 # None under --benchmark-disable (the smoke run)
        benchmark.extra_info["pairs_per_s_median"] = data["n"] / benchmark.stats.stats.median


def test_loader_interleaved(benchmark, data):
    """The three readers one after the other in each round (robust to the load of a shared machine changing
    between tests): ``extra_info[kind + "_pairs_per_s"]`` from the median of each reader's round times."""
    import time

    import numpy as np
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    kw = dict(gt_size=256, scale=4, seed=0, context=USM_CONTEXT, max_epochs=1)
    kinds = [k for k in ("shards", "folders", "lmdb") if k in data]
    times: dict[str, list[float]] = {k: [] for k in kinds}

    def run():
        for k in kinds:
            ds = ShardDataset(data["shards"], **kw) if k == "shards" else PairDataset(data[k], **kw)
            t = time.perf_counter()
            n = sum(1 for _ in ds)
            times[k].append(time.perf_counter() - t)
            assert n == data["n"]

    benchmark.group = "loader-per-worker-interleaved"
    benchmark.name = "+".join(kinds)
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    for k in kinds:                     # the first round is the warm-up (one round only when disabled)
        benchmark.extra_info[f"{k}_pairs_per_s"] = round(data["n"] / float(np.median(times[k][1:] or times[k])), 1)
