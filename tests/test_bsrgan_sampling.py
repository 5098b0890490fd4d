"""The BSRGAN sampler against the published distribution (spec/bsrgan-model.md): chi-square / KS / binomial
tests on >= 10k draws per parameter (fixed seeds: deterministic), plus exact structural properties."""
from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from degradekit.bsrgan import BsrganConfig, bsrgan_preset, sample_bsrgan
from degradekit.bsrgan.params import Blur, DownA, DownB, Jpeg, Noise, Poisson, Resize, Skip

P_MIN = 1e-3  # reject a test statistic this unlikely under the spec's distribution


def _draw(cfg, n, seed):
    rng = np.random.default_rng(seed)
    return [sample_bsrgan(rng, cfg) for _ in range(n)]


@pytest.fixture(scope="module")
def x4():
    return _draw(bsrgan_preset("bsrgan"), 20000, 1)


@pytest.fixture(scope="module")
def x2():
    return _draw(bsrgan_preset("bsrgan-x2"), 12000, 2)


@pytest.fixture(scope="module")
def plus():
    return _draw(bsrgan_preset("bsrgan-plus"), 12000, 3)


def _steps(draws, cls, pred=lambda p, s: True):
    return [(p, s) for p in draws for s in p.steps if isinstance(s, cls) and pred(p, s)]


def _chi_uniform(values, cats):
    c = Counter(values)
    assert set(c) <= set(cats), sorted(set(c) - set(cats))
    obs = np.array([c.get(k, 0) for k in cats], float)
    return stats.chisquare(obs).pvalue


def _chi(values, probs: dict):
    c = Counter(values)
    assert set(c) <= set(probs)
    obs = np.array([c.get(k, 0) for k in probs], float)
    exp = np.array(list(probs.values())) * len(values)
    return stats.chisquare(obs, exp).pvalue


def _binom(k, n, p):
    return stats.binomtest(k, n, p).pvalue


def _ks_uniform(x, lo, hi):
    return stats.kstest(np.asarray(x), stats.uniform(lo, hi - lo).cdf).pvalue


# ------------------------------------------------------------------------------------------------ blur
def test_blur_kernel_size_uniform_over_odd_7_to_25(x4, x2):
    for draws in (x4, x2):
        sizes = [s.size for _, s in _steps(draws, Blur)]
        assert len(sizes) >= 20000
        assert _chi_uniform(sizes, list(range(7, 26, 2))) > P_MIN


def test_blur_aniso_iso_half_half(x4):
    kinds = [s.kind for _, s in _steps(x4, Blur)]
    assert _binom(kinds.count("aniso"), len(kinds), 0.5) > P_MIN


def test_aniso_variances_uniform_0_to_4_plus_sf_and_theta(x4, x2):
    # sf is 4 at x4 without pre-halving, 2 after it and at x2: l1, l2 ~ U(0, 4 + sf) each
    for draws, pred, sf in ((x4, lambda p, s: p.sf == 4, 4), (x4, lambda p, s: p.sf == 2, 2), (x2, None, 2)):
        st = [s for _, s in _steps(draws, Blur, pred or (lambda p, s: True)) if s.kind == "aniso"]
        assert len(st) > 2000
        for name in ("l1", "l2"):
            assert _ks_uniform([getattr(s, name) for s in st], 0, 4 + sf) > P_MIN
        assert _ks_uniform([s.theta for s in st], 0, math.pi) > P_MIN
        # l1 and l2 are independent draws (not sorted, not tied)
        assert abs(np.corrcoef([s.l1 for s in st], [s.l2 for s in st])[0, 1]) < 0.06


def test_iso_sigma_uniform_0_to_2_plus_0_2sf(x4):
    for sf in (4, 2):
        sig = [s.sigma for p, s in _steps(x4, Blur, lambda p, s: p.sf == sf) if s.kind == "iso"]
        assert _ks_uniform(sig, 0, 2 + 0.2 * sf) > P_MIN
        assert len(sig) > 2000 if sf == 2 else len(sig) > 10000


def test_kernel_size_independent_of_width(x4):
    st = [s for _, s in _steps(x4, Blur) if s.kind == "iso"]
    small = [s.size for s in st if s.sigma < 0.5]
    big = [s.size for s in st if s.sigma > 2.3]
    assert min(big) == 7 and max(small) == 25  # 7x7 truncating sigma 2.8, 25x25 deltas: both happen
    assert stats.ks_2samp(small, big).pvalue > P_MIN


# ----------------------------------------------------------------------------------------- downsampling
def test_prehalving_p_025_at_x4_only(x4, x2):
    ph = [p.prehalve for p in x4]
    k = sum(h is not None for h in ph)
    assert _binom(k, len(ph), 0.25) > P_MIN
    assert all((p.prehalve is None) == (p.sf == 4) for p in x4)  # sf := 2 after the pre-halving
    methods = [h.method for h in ph if h is not None]
    assert _binom(methods.count("cv2"), len(methods), 0.5) > P_MIN
    assert all(p.prehalve is None and p.sf == 2 for p in x2)
    x3 = _draw(bsrgan_preset("bsrgan-x3"), 2000, 9)
    assert all(p.prehalve is None and p.sf == 3 for p in x3)


def test_down_a_branches_and_ranges(x4):
    a = _steps(x4, DownA, lambda p, s: p.sf == 4)
    cv = [s for _, s in a if s.method == "cv2"]
    near = [s for _, s in a if s.method == "nearest"]
    assert _binom(len(near), len(a), 0.25) > P_MIN
    assert _ks_uniform([s.s1 for s in cv], 1, 8) > P_MIN
    assert _ks_uniform([s.sigma for s in near], 0.1, 2.4) > P_MIN
    a2 = [s for _, s in _steps(x4, DownA, lambda p, s: p.sf == 2)]
    assert _ks_uniform([s.s1 for s in a2 if s.method == "cv2"], 1, 4) > P_MIN
    assert _ks_uniform([s.sigma for s in a2 if s.method == "nearest"], 0.1, 1.2) > P_MIN


def test_interp_uniform_over_linear_cubic_area(x4):
    vals = [s.interp for _, s in _steps(x4, DownB)]
    vals += [s.interp for _, s in _steps(x4, DownA) if s.method == "cv2"]
    vals += [p.prehalve.interp for p in x4 if p.prehalve is not None and p.prehalve.method == "cv2"]
    assert _chi_uniform(vals, ["linear", "cubic", "area"]) > P_MIN


def test_down_up_frequency_on_cv2_branch(x4, x2):
    # B enlarges when s1 > sf: p = sf / (2 sf - 1) = 4/7 at x4, 2/3 at x2 (spec §4)
    for draws, sf in ((x4, 4), (x2, 2)):
        s1 = [s.s1 for p, s in _steps(draws, DownA, lambda p, s: p.sf == sf) if s.method == "cv2"]
        assert _binom(sum(v > sf for v in s1), len(s1), sf / (2 * sf - 1)) > P_MIN


# ------------------------------------------------------------------------------------------------- order
def test_order_uniform_over_permutations_with_a_before_b(x4):
    orders = [p.order for p in x4]
    assert all(o.index(2) < o.index(3) for o in orders)  # the swap rule: A always before B
    perms = [q for q in itertools.permutations(range(7)) if q.index(2) < q.index(3)]
    assert len(perms) == 2520
    assert _chi_uniform(orders, perms) > P_MIN
    # the swap rule itself: (position of A, position of B) uniform over the 21 pairs i < j
    pairs = [(o.index(2), o.index(3)) for o in orders]
    assert _chi_uniform(pairs, [(i, j) for i in range(7) for j in range(i + 1, 7)]) > P_MIN
    # steps line up with the published op numbers
    ops = {0: Blur, 1: Blur, 2: DownA, 3: DownB, 4: Noise, 5: (Jpeg, Skip), 6: Skip}
    for p in x4[:500]:
        for i, s in zip(p.order, p.steps):
            assert isinstance(s, ops[i])


# ------------------------------------------------------------------------------------------------- noise
def test_noise_level_randint_2_25_inclusive(x4):
    lv = [s.level for _, s in _steps(x4, Noise)]
    assert len(lv) == len(x4)  # op 4 always adds noise
    assert min(lv) == 2 and max(lv) == 25
    assert _chi_uniform(lv, list(range(2, 26))) > P_MIN


def test_noise_branch_40_40_20(x4):
    br = [s.branch for _, s in _steps(x4, Noise)]
    assert _chi(br, {"color": 0.4, "gray": 0.4, "correlated": 0.2}) > P_MIN


def test_correlated_branch_is_level_blind_with_abs(x4):
    st = [s for _, s in _steps(x4, Noise) if s.branch == "correlated"]
    cov = np.array([s.cov for s in st])
    assert np.allclose(cov, cov.transpose(0, 2, 1)) and (cov >= 0).all()  # abs(): every correlation >= 0
    sd = np.sqrt(cov[:, [0, 1, 2], [0, 1, 2]]) * 255
    assert sd.max() <= 25 + 1e-9
    assert 17.0 < np.median(sd) < 18.5  # spec §5: median 17.7 (level ignored)
    q5, q95 = np.percentile(sd, [5, 95])
    assert 9 < q5 < 11.5 and 22 < q95 < 24
    lv = np.array([s.level for s in st])
    low, high = sd[lv <= 8].ravel(), sd[lv >= 20].ravel()
    assert stats.ks_2samp(low, high).pvalue > P_MIN  # same spread whatever the level


def test_corr_noise_level_option_scales_by_level():
    cfg = BsrganConfig(scale=4, corr_noise_level=True)
    st = [s for _, s in _steps(_draw(cfg, 6000, 5), Noise) if s.branch == "correlated"]
    sd = np.array([np.sqrt(np.diag(s.cov)) * 255 for s in st])
    lv = np.array([s.level for s in st])
    assert (sd.max(axis=1) <= lv + 1e-9).all()
    ref = np.array([np.sqrt(np.diag(s.cov)) * 255 / 25 for s in
                    (s for _, s in _steps(_draw(BsrganConfig(), 6000, 6), Noise) if s.branch == "correlated")])
    assert stats.ks_2samp((sd / lv[:, None]).ravel(), ref.ravel()).pvalue > P_MIN


def test_noise_seeds_distinct_and_json_exact(x4):
    seeds = [s.seed for _, s in _steps(x4, Noise)]
    assert len(set(seeds)) == len(seeds) and max(seeds) < 2 ** 53


# -------------------------------------------------------------------------------------------------- JPEG
def test_jpeg_quality_randint_30_95_and_p09(x4):
    js = [s for _, s in _steps(x4, (Jpeg, Skip)) if not isinstance(s, Skip) or s.what == "jpeg"]
    applied = [s.quality for s in js if isinstance(s, Jpeg)]
    assert len(js) == len(x4)
    assert _binom(len(applied), len(js), 0.9) > P_MIN
    finals = [p.final_quality for p in x4]
    for q in (applied, finals):
        assert min(q) == 30 and max(q) == 95
        assert _chi_uniform(q, list(range(30, 96))) > P_MIN


def test_isp_always_skipped_and_recorded(x4, plus):
    for draws, n in ((x4, 1), (plus, 2)):
        for p in draws[:2000]:
            assert p.isp is None
            assert sum(isinstance(s, Skip) and s.what == "isp" for s in p.steps) == n


# ------------------------------------------------------------------------------------------ the options
def test_fit_kernel_option():
    draws = _draw(BsrganConfig(scale=4, fit_kernel=True), 4000, 7)
    for _, s in _steps(draws, Blur):
        sig = s.sigma if s.kind == "iso" else math.sqrt(max(s.l1, s.l2))
        assert s.size >= 2 * math.ceil(3 * sig) + 1 and s.size % 2 == 1 and s.size <= 25


def _ab(p):
    return (next(x for x in p.steps if isinstance(x, DownA)), next(x for x in p.steps if isinstance(x, DownB)))


def test_no_area_enlarge_option():
    draws = _draw(BsrganConfig(scale=4, no_area_enlarge=True), 6000, 8)
    pairs = [(p, *_ab(p)) for p in draws]
    enl = [b.interp for p, a, b in pairs if a.method == "cv2" and a.s1 > p.sf]
    assert len(enl) > 1000 and _chi_uniform(enl, ["linear", "cubic"]) > P_MIN  # never area
    shr = [b.interp for p, a, b in pairs if a.method == "cv2" and a.s1 < p.sf]
    assert _chi_uniform(shr, ["linear", "cubic", "area"]) > P_MIN
    ups = [s.interp for p in _draw(BsrganConfig(scale=4, variant="plus", no_area_enlarge=True), 3000, 4)
           for s in p.steps if isinstance(s, Resize) and s.direction == "up"]
    assert len(ups) > 500 and "area" not in ups


# -------------------------------------------------------------------------------------------------- plus
def test_plus_shuffle_and_fixed_order(plus):
    sh = [p.shuffled for p in plus]
    assert _binom(sum(sh), len(sh), 0.1) > P_MIN  # KAIR's shuffle_prob
    fixed = [p.order for p in plus if not p.shuffled]
    for o in fixed:
        assert o[:2] == (0, 1) and o[6:9] == (6, 7, 8)
        assert sorted(o[2:6]) == [2, 3, 4, 5] and sorted(o[9:]) == [9, 10, 11, 12]
    for sl, grp in ((slice(2, 6), (2, 3, 4, 5)), (slice(9, 13), (9, 10, 11, 12))):
        assert _chi_uniform([o[sl] for o in fixed], list(itertools.permutations(grp))) > P_MIN
    full = [p.order for p in plus if p.shuffled]
    assert _chi_uniform([o.index(6) for o in full], list(range(13))) > P_MIN  # JPEG anywhere when shuffled


def test_plus_probabilities_and_ranges(plus):
    po = [s for _, s in _steps(plus, (Poisson, Skip)) if not isinstance(s, Skip) or s.what == "poisson"]
    assert len(po) == 2 * len(plus)
    app = [s for s in po if isinstance(s, Poisson)]
    assert _binom(len(app), len(po), 0.1) > P_MIN
    assert _ks_uniform(np.log10([s.vals for s in app]), 2, 4) > P_MIN
    assert _binom(sum(s.gray for s in app), len(app), 0.5) > P_MIN
    sp = [s for _, s in _steps(plus, (Noise, Skip))
          if (isinstance(s, Noise) and s.kind == "speckle") or (isinstance(s, Skip) and s.what == "speckle")]
    assert _binom(sum(isinstance(s, Noise) for s in sp), len(sp), 0.1) > P_MIN
    gs = [s for _, s in _steps(plus, Noise) if s.kind == "gaussian"]
    assert len(gs) == 2 * len(plus)
    rs = [s for _, s in _steps(plus, Resize)]
    assert _chi([s.direction for s in rs], {"up": 0.2, "down": 0.7, "keep": 0.1}) > P_MIN
    assert _ks_uniform([s.factor for s in rs if s.direction == "up"], 1, 2) > P_MIN
    assert _ks_uniform([s.factor for s in rs if s.direction == "down"], 0.5 / 4, 1) > P_MIN
    assert all(s.factor == 1.0 for s in rs if s.direction == "keep")
    bl = [s for _, s in _steps(plus, Blur) if s.kind == "aniso"]
    assert _ks_uniform([s.l1 for s in bl], 0, 8) > P_MIN  # sf = scale: no pre-halving in plus
    assert all(p.prehalve is None and p.sf == 4 and p.final_interp in ("linear", "cubic", "area") for p in plus)
    assert _chi_uniform([p.final_interp for p in plus], ["linear", "cubic", "area"]) > P_MIN
    assert _chi_uniform([p.final_quality for p in plus], list(range(30, 96))) > P_MIN


def test_sampler_rejects_wrong_arguments():
    with pytest.raises(TypeError):
        sample_bsrgan(np.random.RandomState(0), bsrgan_preset())
    with pytest.raises(TypeError):
        sample_bsrgan(np.random.default_rng(0), {"scale": 4})


def test_x3_ranges_use_sf_3():
    draws = _draw(bsrgan_preset("bsrgan-x3"), 10000, 12)
    an = [s for _, s in _steps(draws, Blur) if s.kind == "aniso"]
    iso = [s for _, s in _steps(draws, Blur) if s.kind == "iso"]
    assert _ks_uniform([s.l1 for s in an], 0, 7) > P_MIN
    assert _ks_uniform([s.sigma for s in iso], 0, 2.6) > P_MIN
    a = [s for _, s in _steps(draws, DownA)]
    assert _ks_uniform([s.s1 for s in a if s.method == "cv2"], 1, 6) > P_MIN
    assert _ks_uniform([s.sigma for s in a if s.method == "nearest"], 0.1, 1.8) > P_MIN
    s1 = [s.s1 for s in a if s.method == "cv2"]
    assert _binom(sum(v > 3 for v in s1), len(s1), 3 / 5) > P_MIN  # down-up p = sf / (2 sf - 1)
