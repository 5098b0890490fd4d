"""Distributions of the drawn parameters against spec/realesrgan-model.md (chi-square / KS / binomial tests).

Each test draws >= 10k values with a fixed seed; a p-value below 1e-3 fails.  The spec's numbers are written
out here independently of the preset code, so a wrong preset value or a wrong sampling rule is caught.
"""
import math

import numpy as np
import pytest
from scipy import stats

from degradekit import kernels as K
from degradekit.config import DegradeConfig, preset
from degradekit.pipeline import sample

PI = math.pi
P_MIN = 1e-3
SIZES = [7, 9, 11, 13, 15, 17, 19, 21]
WEIGHTS = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03,
           "plateau_iso": 0.12, "plateau_aniso": 0.03}


def ks_uniform(x, lo, hi):
    x = np.asarray(x, dtype=np.float64)
    assert len(x) > 50
    assert x.min() >= lo and x.max() <= hi
    p = stats.kstest(x, stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue
    assert p > P_MIN, (lo, hi, p)


def binom(k, n, prob):
    p = stats.binomtest(int(k), int(n), prob).pvalue
    assert p > P_MIN, (k, n, prob, p)


def chi2(counts: dict, probs: dict):
    keys = list(probs)
    assert set(counts) <= set(keys), set(counts) - set(keys)
    obs = np.array([counts.get(k, 0) for k in keys], dtype=np.float64)
    exp = np.array([probs[k] for k in keys]) * obs.sum()
    p = stats.chisquare(obs, exp).pvalue
    assert p > P_MIN, (dict(zip(keys, obs)), p)


def count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


@pytest.fixture(scope="module", params=[0, 1], ids=["stage1", "stage2"])
def stage_kernels(request):
    cfg = preset("realesrgan").stages[request.param].kernel
    rng = np.random.default_rng(100 + request.param)
    ks = [K.sample_kernel(rng, cfg) for _ in range(20000)]
    sigma_hi = {0: 3.0, 1: 1.5}[request.param]
    return ks, sigma_hi


def test_kernel_sizes_and_sinc(stage_kernels):
    ks, _ = stage_kernels
    chi2(count(k.size for k in ks), {s: 1 / 8 for s in SIZES})
    sinc = [k for k in ks if k.kind == "sinc"]
    binom(len(sinc), len(ks), 0.1)
    # omega_c ~ U(pi/3, pi) for k < 13, U(pi/5, pi) for k >= 13
    ks_uniform([k.omega_c for k in sinc if k.size < 13], PI / 3, PI)
    ks_uniform([k.omega_c for k in sinc if k.size >= 13], PI / 5, PI)
    # the size is uniform within the sinc kernels too
    chi2(count(k.size for k in sinc), {s: 1 / 8 for s in SIZES})


def test_kernel_kinds_and_shapes(stage_kernels):
    ks, sigma_hi = stage_kernels
    other = [k for k in ks if k.kind != "sinc"]
    chi2(count(k.kind for k in other), WEIGHTS)
    ks_uniform([k.sigma_x for k in other], 0.2, sigma_hi)
    iso = [k for k in other if not k.kind.endswith("aniso")]
    aniso = [k for k in other if k.kind.endswith("aniso")]
    assert all(k.sigma_y == k.sigma_x and k.theta == 0.0 for k in iso)
    ks_uniform([k.sigma_y for k in aniso], 0.2, sigma_hi)
    ks_uniform([k.theta for k in aniso], -PI, PI)
    # sigma_x and sigma_y are independent draws (not one shared value)
    assert abs(stats.pearsonr([k.sigma_x for k in aniso], [k.sigma_y for k in aniso])[0]) < 0.1
    assert all(k.beta is None for k in other if k.kind in ("iso", "aniso"))


def test_kernel_beta_split(stage_kernels):
    ks, _ = stage_kernels
    plateau = np.array([k.beta for k in ks if k.kind.startswith("plateau")])
    # (!) half of all plateau kernels have beta == 1 exactly: U(1, 1) with probability 1/2
    binom(np.count_nonzero(plateau == 1.0), len(plateau), 0.5)
    ks_uniform(plateau[plateau != 1.0], 1.0, 2.0)
    gen = np.array([k.beta for k in ks if k.kind.startswith("generalized")])
    binom(np.count_nonzero(gen < 1.0), len(gen), 0.5)
    ks_uniform(gen[gen < 1.0], 0.5, 1.0)
    ks_uniform(gen[gen >= 1.0], 1.0, 4.0)
    # ... so the generalized beta is not U(0.5, 4)
    assert stats.kstest(gen, stats.uniform(0.5, 3.5).cdf).pvalue < 1e-6


def test_final_sinc():
    fc = preset("realesrgan").final
    rng = np.random.default_rng(7)
    draws = [K.sample_final_sinc(rng, fc) for _ in range(20000)]
    sinc = [d for d in draws if d is not None]
    binom(len(sinc), len(draws), 0.8)
    chi2(count(d.size for d in sinc), {s: 1 / 8 for s in SIZES})
    # omega_c ~ U(pi/3, pi) for every size (not the stage rule)
    ks_uniform([d.omega_c for d in sinc if d.size >= 13], PI / 3, PI)
    ks_uniform([d.omega_c for d in sinc if d.size < 13], PI / 3, PI)


@pytest.fixture(scope="module")
def drawn():
    cfg = preset("realesrgan")
    rng = np.random.default_rng(2024)
    return [sample(rng, cfg) for _ in range(10000)]


def test_structure(drawn):
    assert all(p.order == 2 and p.scale == 4 for p in drawn)
    assert all(p.usm is not None and p.usm.radius == 51 and p.usm.weight == 0.5 and p.usm.threshold == 10
               for p in drawn)
    assert all(p.stages[0].blur is not None for p in drawn)          # stage-1 blur with probability 1
    binom(sum(p.stages[1].blur is not None for p in drawn), len(drawn), 0.8)
    assert all(p.stages[0].jpeg_quality is not None for p in drawn)
    assert all(p.stages[1].jpeg_quality is None for p in drawn)     # stage 2 JPEG is the final one
    assert all(p.stages[i].noise is not None for p in drawn for i in (0, 1))
    # the blur kernels inside full samples follow the stage's sigma range
    ks_uniform([p.stages[1].blur.sigma_x for p in drawn
                if p.stages[1].blur is not None and p.stages[1].blur.kind != "sinc"], 0.2, 1.5)


@pytest.mark.parametrize("stage,probs,up,down,ref", [
    (0, {"up": 0.2, "down": 0.7, "keep": 0.1}, (1.0, 1.5), (0.15, 1.0), "current"),
    (1, {"up": 0.3, "down": 0.4, "keep": 0.3}, (1.0, 1.2), (0.3, 1.0), "final"),
])
def test_resize(drawn, stage, probs, up, down, ref):
    rs = [p.stages[stage].resize for p in drawn]
    chi2(count(r.direction for r in rs), probs)
    ks_uniform([r.factor for r in rs if r.direction == "up"], *up)
    ks_uniform([r.factor for r in rs if r.direction == "down"], *down)
    assert all(r.factor == 1.0 for r in rs if r.direction == "keep")
    chi2(count(r.mode for r in rs), {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3})
    assert all(r.size_ref == ref for r in rs)
    # the mode does not depend on the direction
    chi2(count(r.mode for r in rs if r.direction == "down"), {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3})


@pytest.mark.parametrize("stage,sigma_hi,scale_hi", [(0, 30.0, 3.0), (1, 25.0, 2.5)])
def test_noise(drawn, stage, sigma_hi, scale_hi):
    ns = [p.stages[stage].noise for p in drawn]
    gauss = [n for n in ns if n.kind == "gaussian"]
    pois = [n for n in ns if n.kind == "poisson"]
    assert len(gauss) + len(pois) == len(ns)
    binom(len(gauss), len(ns), 0.5)
    ks_uniform([n.sigma for n in gauss], 1.0, sigma_hi)
    ks_uniform([n.scale for n in pois], 0.05, scale_hi)
    binom(sum(n.gray for n in gauss), len(gauss), 0.4)
    binom(sum(n.gray for n in pois), len(pois), 0.4)
    seeds = [n.seed for n in ns]
    assert all(isinstance(s, int) and 0 <= s < 2 ** 53 for s in seeds)
    assert len(set(seeds)) == len(seeds)


def _round_uniform_probs(lo=30, hi=95):
    # q = round(U(lo, hi)): the end values get half a unit interval each
    width = hi - lo
    return {q: (0.5 if q in (lo, hi) else 1.0) / width for q in range(lo, hi + 1)}


@pytest.mark.parametrize("where", ["stage1", "final"])
def test_jpeg_quality(drawn, where):
    qs = [p.stages[0].jpeg_quality if where == "stage1" else p.final.jpeg_quality for p in drawn]
    assert all(type(q) is int and 30 <= q <= 95 for q in qs)
    chi2(count(qs), _round_uniform_probs())


def test_final(drawn):
    binom(sum(p.final.resize_first for p in drawn), len(drawn), 0.5)
    chi2(count(p.final.mode for p in drawn), {"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3})
    sinc = [p.final.sinc for p in drawn if p.final.sinc is not None]
    binom(len(sinc), len(drawn), 0.8)
    assert all(k.kind == "sinc" for k in sinc)
    ks_uniform([k.omega_c for k in sinc], PI / 3, PI)


def test_higher_order_reuses_stage2_settings():
    cfg = DegradeConfig(order=4)
    rng = np.random.default_rng(3)
    ps = [sample(rng, cfg) for _ in range(2000)]
    assert all(p.order == 4 for p in ps)
    for i in (1, 2, 3):
        rs = [p.stages[i].resize for p in ps]
        assert all(r.size_ref == "final" for r in rs)
        assert max(r.factor for r in rs if r.direction == "up") <= 1.2
        assert all(p.stages[i].jpeg_quality is None for p in ps)
        sig = [p.stages[i].blur.sigma_x for p in ps if p.stages[i].blur and p.stages[i].blur.kind != "sinc"]
        assert max(sig) <= 1.5
        binom(sum(p.stages[i].blur is not None for p in ps), len(ps), 0.8)
    cfg1 = DegradeConfig(order=1)
    p1 = sample(np.random.default_rng(0), cfg1)
    assert p1.order == 1 and p1.stages[0].resize.size_ref == "current"


class TinyPool:
    """A real object with the pool protocol; arrays made here are test data."""

    def __init__(self):
        g = np.exp(-0.5 * (np.arange(-2, 3)[:, None] ** 2 + np.arange(-2, 3)[None, :] ** 2))
        self._kernels = {"k0": g / g.sum(), "k1": np.full((3, 3), 1 / 9), "k2": np.eye(5) / 5}
        rng = np.random.default_rng(99)
        self._noise = {"n0": (rng.standard_normal((32, 40, 3)) * 0.02).astype(np.float32),
                       "n1": (rng.standard_normal((24, 24, 3)) * 0.05).astype(np.float32)}

    def kernel_ids(self, scale):
        return ("k0", "k1", "k2") if scale == 4 else ("k1",)

    def kernel(self, kid):
        return self._kernels[kid]

    def noise_ids(self):
        return ("n0", "n1")

    def noise(self, nid):
        return self._noise[nid]


def _pool_config(kernel_prob, noise_prob):
    import dataclasses
    base = preset("realesrgan")
    stages = tuple(dataclasses.replace(s, kernel=dataclasses.replace(s.kernel, pool_prob=kernel_prob),
                                       noise=dataclasses.replace(s.noise, pool_prob=noise_prob))
                   for s in base.stages)
    return dataclasses.replace(base, stages=stages)


def test_pool_probabilities_and_ids():
    cfg = _pool_config(0.3, 0.6)
    pool = TinyPool()
    rng = np.random.default_rng(5)
    ps = [sample(rng, cfg, pool) for _ in range(10000)]
    k1 = [p.stages[0].blur for p in ps]
    binom(sum(k.kind == "pool" for k in k1), len(k1), 0.3)
    chi2(count(k.pool_id for k in k1 if k.kind == "pool"), {"k0": 1 / 3, "k1": 1 / 3, "k2": 1 / 3})
    # the usual draw otherwise: sinc share of the non-pool kernels is still 0.1
    rest = [k for k in k1 if k.kind != "pool"]
    binom(sum(k.kind == "sinc" for k in rest), len(rest), 0.1)
    ns = [p.stages[1].noise for p in ps]
    pn = [n for n in ns if n.kind == "pool"]
    binom(len(pn), len(ns), 0.6)
    chi2(count(n.pool_id for n in pn), {"n0": 0.5, "n1": 0.5})
    ks_uniform([n.u for n in pn], 0.0, 1.0)
    ks_uniform([n.v for n in pn], 0.0, 1.0)
    assert all(n.u < 1 and n.v < 1 for n in pn)
    # the pool ids follow the scale
    cfg2 = _pool_config(1.0, 0.0)
    import dataclasses
    cfg2 = dataclasses.replace(cfg2, scale=2)
    assert {sample(rng, cfg2, pool).stages[0].blur.pool_id for _ in range(50)} == {"k1"}


def test_pool_prob_without_pool_raises_before_drawing():
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    for cfg in (_pool_config(0.1, 0.0), _pool_config(0.0, 0.1)):
        with pytest.raises(ValueError, match="no pool"):
            sample(rng, cfg)
        assert rng.bit_generator.state == state


def test_zero_pool_prob_does_not_change_the_stream():
    # configs without pool use exactly the same draws with or without a pool object
    cfg = preset("realesrgan")
    a = sample(np.random.default_rng(11), cfg)
    b = sample(np.random.default_rng(11), cfg, TinyPool())
    assert a == b
