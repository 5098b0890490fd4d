"""`degradekit export` throughput: pairs/s into paired folders and into BasicSR LMDB, from a real synth shard
folder (400x400 HR / 100x100 LR level-1 PNGs, 2 LR variants, --shard-size 16), verify included.

    pytest benchmarks/bench_export.py --benchmark-only --benchmark-columns=min,median,mean,rounds

``extra_info["pairs_per_s_median"]`` = exported pairs / the median wall time of one whole export (a fresh
output folder each round, the page cache warm). Groups: export-variant0 (one pair per sample) and
export-variant-all (every variant; the HR once per sample: a hard link in folders, a copy in LMDB).
"""
from __future__ import annotations

import itertools
import json

import pytest
from click.testing import CliRunner

from cli import degradekit as cli
from degradekit.synth.export import export

_count = itertools.count()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_export") / "shards"
    r = CliRunner().invoke(cli, ["synth", "--src", "sample", "--out", str(out), "--patch", "400", "--step", "100",
                                 "--max-pixels", "1000000", "--shard-size", "16", "--variants", "2",
                                 "--workers", "1", "--progress", "none", "--seed", "3"])
    assert r.exit_code in (0, 3), r.output
    m = json.loads((out / "manifest.json").read_text())
    return out, m["n_samples"]


@pytest.mark.parametrize("variant", [0, "all"])
@pytest.mark.parametrize("fmt", ["folders", "lmdb"])
def test_export_pairs_per_second(benchmark, shards, tmp_path, fmt, variant):
    if fmt == "lmdb":
        pytest.importorskip("lmdb")
    src, n = shards

    def run():
        export(src, tmp_path / f"o{next(_count)}", fmt=fmt, variant=variant)

    benchmark.group = f"export-variant{'-all' if variant == 'all' else '0'}"
    benchmark.name = f"{fmt}"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    pairs = n * (2 if variant == "all" else 1)
    benchmark.extra_info["pairs"] = pairs
    if benchmark.stats:                 # None under --benchmark-disable (the smoke run)
        benchmark.extra_info["pairs_per_s_median"] = pairs / benchmark.stats.stats.median
