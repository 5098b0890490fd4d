"""BSRGAN pipeline benchmarks (one core): a full pair (sample + apply) at KAIR's training size (320x320 HR ->
80x80 at x4) and at 400x400, cycling through 200 seeds so the mixture of ops, kernels and branches is the
preset's; the plus variant and x2; the MATLAB imresize (the pre-halving) against Pillow's antialiased bicubic
(the same filter in the interior) as its primitive.

    taskset -c 0 pytest benchmarks/bench_bsrgan.py --benchmark-only --benchmark-columns=min,median,mean,rounds
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from degradekit.bsrgan import apply_bsrgan, bsrgan_preset, sample_bsrgan
from degradekit.bsrgan.imresize import imresize

N_SEEDS = 200


def _pair(benchmark, hr, name):
    cfg = bsrgan_preset(name)
    seeds = itertools.cycle(range(N_SEEDS))
    for s in range(4):  # compile / warm the Numba kernels and OpenCV
        apply_bsrgan(hr, sample_bsrgan(np.random.default_rng(s), cfg))

    def one():
        return apply_bsrgan(hr, sample_bsrgan(np.random.default_rng(next(seeds)), cfg))

    lr = benchmark.pedantic(one, rounds=N_SEEDS, iterations=1)
    assert lr.shape == (hr.shape[0] // cfg.scale, hr.shape[1] // cfg.scale, 3)


@pytest.fixture(scope="module")
def hr320(hr400):
    return np.ascontiguousarray(hr400[40:360, 40:360])


@pytest.mark.benchmark(group="bsrgan pair 320 x4")
def test_bsrgan_pair_320(benchmark, hr320):
    _pair(benchmark, hr320, "bsrgan")


@pytest.mark.benchmark(group="bsrgan pair 400 x4")
def test_bsrgan_pair_400(benchmark, hr400):
    _pair(benchmark, hr400, "bsrgan")


@pytest.mark.benchmark(group="bsrgan-x2 pair 400")
def test_bsrgan_x2_pair_400(benchmark, hr400):
    _pair(benchmark, hr400, "bsrgan-x2")


@pytest.mark.benchmark(group="bsrgan-plus pair 320 x4")
def test_bsrgan_plus_pair_320(benchmark, hr320):
    _pair(benchmark, hr320, "bsrgan-plus")


@pytest.mark.benchmark(group="imresize 1/2 320x320")
def test_imresize_half_ours(benchmark, hr320):
    img = hr320.astype(np.float32) / 255
    imresize(img, scale=0.5)
    out = benchmark(imresize, img, scale=0.5)
    assert out.shape == (160, 160, 3)


@pytest.mark.benchmark(group="imresize 1/2 320x320")
def test_imresize_half_baseline_pillow(benchmark, hr320):
    chans = [Image.fromarray(np.ascontiguousarray(hr320[..., c].astype(np.float32) / 255), mode="F")
             for c in range(3)]

    def pil():
        return [ch.resize((160, 160), Image.BICUBIC) for ch in chans]

    out = benchmark(pil)
    assert out[0].size == (160, 160)
