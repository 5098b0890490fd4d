"""Drawing one BSRGAN degradation: ``sample_bsrgan(rng, cfg) -> BsrganParams``.

Randomness only from ``rng`` (the published code's two streams, Python ``random`` and NumPy's global one,
become this one Generator); every drawn value is recorded. The distributions are the published ones
(spec/bsrgan-model.md, line references there); integer draws include both ends (``random.randint``).
"""
from __future__ import annotations

import math

import numpy as np

from .config import BsrganConfig
from .params import INTERPS, Blur, BsrganParams, DownA, DownB, Jpeg, Noise, Poisson, Prehalve, Resize, Skip

__all__ = ["sample_bsrgan", "SEED_BOUND"]

SEED_BOUND = 2 ** 53  # noise seeds stay exact in every JSON reader


def _interp(rng: np.random.Generator, enlarge: bool = False) -> str:
    """random.choice([1, 2, 3]); with the (ours) no_area_enlarge option an enlarging resize draws from
    {linear, cubic}."""
    return INTERPS[int(rng.integers(2 if enlarge else 3))]


def _fit(size: int, sigma: float, cfg: BsrganConfig) -> int:
    return max(size, 2 * math.ceil(3.0 * sigma) + 1) if cfg.fit_kernel else size


def _blur(rng: np.random.Generator, sf: int, cfg: BsrganConfig) -> Blur:
    """B:335-346: 50/50 anisotropic (variances l1, l2 ~ U(0, 4 + sf), theta ~ U(0, pi)) or isotropic
    (sigma ~ U(0, 2 + 0.2 sf)); size 2 * randint(2, 11) + 3 in {7, ..., 25}, independent of the width."""
    if rng.random() < 0.5:
        wd2 = 4.0 + sf
        l1, l2 = wd2 * rng.random(), wd2 * rng.random()
        size = 2 * int(rng.integers(2, 12)) + 3
        theta = rng.random() * math.pi
        return Blur("aniso", _fit(size, math.sqrt(max(l1, l2)), cfg), l1=l1, l2=l2, theta=theta)
    size = 2 * int(rng.integers(2, 12)) + 3
    sigma = (2.0 + 0.2 * sf) * rng.random()
    return Blur("iso", _fit(size, sigma, cfg), sigma=sigma)


def _noise(rng: np.random.Generator, cfg: BsrganConfig, kind: str) -> Noise:
    """B:363-395: level randint(lo, hi); u > 0.6 colour, u < 0.4 gray, else correlated with
    cov = |L^2 U^T D U| elementwise (D = diag of 3 U(0, 1), U = orth(U(0, 1)^{3x3})), L = hi / 255 whatever the
    level (L = level / 255 with corr_noise_level)."""
    lo, hi = cfg.noise_range
    level = int(rng.integers(lo, hi + 1))
    u = rng.random()
    cov = None
    if u > 0.6:
        branch = "color"
    elif u < 0.4:
        branch = "gray"
    else:
        branch = "correlated"
        big = (level if cfg.corr_noise_level else hi) / 255.0
        d = np.diag(rng.random(3))
        # scipy.linalg.orth of a full-rank 3x3 = the left singular vectors; their signs cancel in abs()
        q = np.linalg.svd(rng.random((3, 3)))[0]
        c = np.abs(big ** 2 * (q.T @ d @ q))
        cov = tuple(tuple(float(x) for x in r) for r in c)
    return Noise(kind, level, branch, int(rng.integers(SEED_BOUND)), cov)


def _jpeg_quality(rng: np.random.Generator, cfg: BsrganConfig) -> int:
    return int(rng.integers(cfg.jpeg_range[0], cfg.jpeg_range[1] + 1))


def _sample_bsrgan7(rng: np.random.Generator, cfg: BsrganConfig) -> BsrganParams:
    sf = cfg.scale
    prehalve = None
    if sf == 4 and rng.random() < cfg.prehalve_prob:  # B:458-464
        prehalve = Prehalve("cv2", _interp(rng)) if rng.random() < 0.5 else Prehalve("matlab")
        sf = 2
    order = [int(i) for i in rng.permutation(7)]  # B:466-469: uniform permutation, then A before B
    ia, ib = order.index(2), order.index(3)
    if ia > ib:
        order[ia], order[ib] = order[ib], order[ia]
    steps, s1 = [], None
    for op in order:
        if op in (0, 1):
            steps.append(_blur(rng, sf, cfg))
        elif op == 2:  # B:480-491
            if rng.random() < cfg.nearest_prob:
                steps.append(DownA("nearest", sigma=float(rng.uniform(0.1, 0.6 * sf))))
            else:
                s1 = float(rng.uniform(1.0, 2.0 * sf))
                steps.append(DownA("cv2", s1=s1, interp=_interp(rng)))
        elif op == 3:  # B:493-496; enlarges when s1 > sf (the down-up path)
            steps.append(DownB(_interp(rng, cfg.no_area_enlarge and s1 is not None and s1 > sf)))
        elif op == 4:
            steps.append(_noise(rng, cfg, "gaussian"))
        elif op == 5:
            steps.append(Jpeg(_jpeg_quality(rng, cfg)) if rng.random() < cfg.jpeg_prob else Skip("jpeg"))
        else:  # op 6: the ISP runs only with a model, which nobody has (spec §7)
            steps.append(Skip("isp"))
    return BsrganParams("bsrgan", cfg.scale, sf, False, cfg.antialias, prehalve, True, tuple(order),
                        tuple(steps), None, _jpeg_quality(rng, cfg))


def _sample_plus(rng: np.random.Generator, cfg: BsrganConfig) -> BsrganParams:
    sf = cfg.scale
    if rng.random() < cfg.shuffle_prob:  # B:551-557
        shuffled, order = True, [int(i) for i in rng.permutation(13)]
    else:
        shuffled = False
        order = [0, 1] + [int(i) for i in rng.permutation([2, 3, 4, 5])] + [6, 7, 8] \
            + [int(i) for i in rng.permutation([9, 10, 11, 12])]
    steps, size = [], 1.0  # size: the product of the resize factors (HR = 1), for no_area_enlarge
    for op in order:
        if op in (0, 7):
            steps.append(_blur(rng, sf, cfg))
        elif op in (1, 8):  # B:349-360
            u = rng.random()
            if u > 0.8:
                direction, f = "up", float(rng.uniform(1.0, 2.0))
            elif u < 0.7:
                direction, f = "down", float(rng.uniform(0.5 / sf, 1.0))
            else:
                direction, f = "keep", 1.0
            steps.append(Resize(direction, f, _interp(rng, cfg.no_area_enlarge and direction == "up")))
            size *= f
        elif op in (2, 9):
            steps.append(_noise(rng, cfg, "gaussian"))
        elif op in (3, 10):  # B:398-409
            if rng.random() < cfg.poisson_prob:
                vals = float(10.0 ** (2.0 * rng.random() + 2.0))
                gray = bool(rng.random() >= 0.5)
                steps.append(Poisson(vals, gray, int(rng.integers(SEED_BOUND))))
            else:
                steps.append(Skip("poisson"))
        elif op in (4, 11):
            steps.append(_noise(rng, cfg, "speckle") if rng.random() < cfg.speckle_prob else Skip("speckle"))
        elif op == 6:
            steps.append(Jpeg(_jpeg_quality(rng, cfg)))
        else:  # 5, 12: ISP, no model
            steps.append(Skip("isp"))
    final_interp = _interp(rng, cfg.no_area_enlarge and size < 1.0 / sf)
    return BsrganParams("plus", cfg.scale, sf, cfg.use_sharp, cfg.antialias, None, shuffled, tuple(order),
                        tuple(steps), final_interp, _jpeg_quality(rng, cfg))


def sample_bsrgan(rng: np.random.Generator, cfg: BsrganConfig) -> BsrganParams:
    """Draw one degradation of ``cfg`` (variant 'bsrgan' or 'plus') with ``rng``. Needs no image size."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(cfg, BsrganConfig):
        raise TypeError(f"cfg: expected a BsrganConfig, got {type(cfg).__name__}")
    return _sample_plus(rng, cfg) if cfg.variant == "plus" else _sample_bsrgan7(rng, cfg)
