"""Distributions of the issue-11 draws (chi-square / KS / binomial on >= 10k samples, p < 1e-3 fails), the
shuffle's order frequencies, and the rule that zero probabilities draw nothing (the RNG stream is untouched).

The expected numbers are written out from the preset's documented mix, independently of the sampler code.
"""
import dataclasses
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from degradekit.config import (DegradeConfig, FinalConfig, KernelConfig, NoiseConfig, ResizeConfig, StageConfig,
                               UsmConfig, preset)
from degradekit.pipeline import sample

P_MIN = 1e-3
N = 12000
SIX = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03, "plateau_iso": 0.12,
       "plateau_aniso": 0.03}
WEB = {"lanczos3": 0.3, "bicubic_a50": 0.2, "bicubic_a75": 0.1, "mitchell": 0.1, "bilinear": 0.1, "hamming": 0.05,
       "box": 0.05, "lanczos4": 0.05, "nearest": 0.05}


def chi2(values, probs: dict):
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert set(counts) <= set(probs), set(counts) - set(probs)
    keys = [k for k in probs if probs[k] > 0]
    obs = np.array([counts.get(k, 0) for k in keys], dtype=np.float64)
    exp = np.array([probs[k] for k in keys]) / sum(probs[k] for k in keys) * obs.sum()
    p = stats.chisquare(obs, exp).pvalue
    assert p > P_MIN, (dict(zip(keys, obs)), p)


def binom(k, n, prob):
    p = stats.binomtest(int(k), int(n), prob).pvalue
    assert p > P_MIN, (k, n, prob, p)


def ks_uniform(x, lo, hi):
    x = np.asarray(x, dtype=np.float64)
    assert len(x) > 50 and x.min() >= lo and x.max() <= hi
    p = stats.kstest(x, stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue
    assert p > P_MIN, (lo, hi, p)


def int_uniform(x, lo, hi):
    chi2(x, {q: 1.0 for q in range(lo, hi + 1)})


@pytest.fixture(scope="module")
def drawn():
    rng = np.random.default_rng(11)
    cfg = preset("realworld")
    return [sample(rng, cfg).to_dict() for _ in range(N)]


def _codec(rec):
    if rec is None or (rec.get("jpeg_quality") is None and rec.get("compression") is None):
        return "none"
    return "jpeg" if rec.get("compression") is None else rec["compression"]["codec"]


def test_codec_weights(drawn):
    s1 = [d["stages"][0] for d in drawn]
    chi2([_codec(s) for s in s1], {"none": 0.1, "jpeg": 0.9 * 0.75, "webp": 0.9 * 0.15, "h264": 0.9 * 0.07,
                                   "jpeg2000": 0.9 * 0.03})
    chi2([_codec(d["final"]) for d in drawn], {"jpeg": 0.45, "webp": 0.2, "avif": 0.1, "h264": 0.1, "hevc": 0.05,
                                               "vp9": 0.05, "av1": 0.05})
    assert all(_codec(d["stages"][1]) == "none" for d in drawn)


def test_codec_settings(drawn):
    allc = [r["compression"] for d in drawn for r in (d["stages"][0], d["final"]) if r.get("compression")]
    by = {c: [x for x in allc if x["codec"] == c] for c in ("jpeg", "webp", "avif", "h264", "hevc", "vp9", "av1")}
    # JPEG: 4:2:0 goes to the 0.1 field jpeg_quality; the others record their subsampling
    subs = ["420" if r.get("jpeg_quality") is not None else r["compression"]["subsampling"]
            for d in drawn for r in (d["stages"][0], d["final"]) if _codec(r) == "jpeg"]
    chi2(subs, {"420": 0.75, "422": 0.1, "444": 0.15})
    int_uniform([c["quality"] for c in by["webp"]], 40, 95)
    int_uniform([c["quality"] for c in by["avif"]], 40, 85)
    chi2([c["speed"] for c in by["avif"]], {6: 1, 7: 1, 8: 1})
    chi2([(c["preset"], c["pix_fmt"]) for c in by["h264"] if c["quality"] > 30],   # final's h264 only
         {(p, f): 1 for p in ("veryfast", "medium") for f in ("yuv420p", "yuv444p")})
    chi2([c["preset"] for c in by["vp9"]], {"good": 1, "realtime": 1})
    chi2([c["preset"] for c in by["av1"]], {"8": 1, "10": 1})
    assert all(20 <= c["quality"] <= 34 for c in by["hevc"])
    assert all(c.keys() == {"codec", "quality", "subsampling"} for c in by["jpeg"])


def test_kernel_kinds(drawn):
    blurs = [d["stages"][0]["blur"] for d in drawn]
    probs = {"none": 0.1, "disk": 0.9 * 0.1, "motion": 0.9 * 0.08, "box": 0.9 * 0.03, "median": 0.9 * 0.02,
             "sinc": 0.9 * 0.77 * 0.1}
    probs.update({k: 0.9 * 0.77 * 0.9 * w for k, w in SIX.items()})
    chi2(["none" if b is None else b["kind"] for b in blurs], probs)
    ks_uniform([b["radius"] for b in blurs if b and b["kind"] == "disk"], 0.5, 3.0)
    ks_uniform([b["length"] for b in blurs if b and b["kind"] == "motion"], 1.0, 9.0)
    ks_uniform([b["angle"] for b in blurs if b and b["kind"] == "motion"], -180.0, 180.0)
    ks_uniform([b["width"] for b in blurs if b and b["kind"] == "box"], 1.0, 3.0)
    chi2([b["size"] for b in blurs if b and b["kind"] == "median"], {3: 1, 5: 1})
    assert all(set(b) == {"kind", "radius"} for b in blurs if b and b["kind"] == "disk")


def test_resize_filters_antialias_down_up(drawn):
    rs = [d["stages"][0]["resize"] for d in drawn]
    probs = {f"f:{k}": 0.5 * w for k, w in WEB.items()}
    probs.update({f"m:{m}": 0.5 / 3 for m in ("area", "bilinear", "bicubic")})
    chi2([f"f:{r['filter']}" if "filter" in r else f"m:{r['mode']}" for r in rs], probs)
    aa = [r["antialias"] for r in rs if "filter" in r and r["filter"] != "nearest"]
    binom(sum(aa), len(aa), 0.7)
    assert all(r["antialias"] is False for r in rs if r.get("filter") == "nearest")
    du = [r["down_up"] for r in rs if "down_up" in r]
    binom(len(du), len(rs), 0.1)
    ks_uniform([x["factor"] for x in du], 0.5, 0.9)
    binom(sum("filter" in x for x in du), len(du), 0.5)
    fin = [d["final"] for d in drawn]
    binom(sum("filter" in f for f in fin), len(fin), 0.5)
    chi2([f["filter"] for f in fin if "filter" in f], WEB)


def test_noise_kinds_and_spaces(drawn):
    ns = [d["stages"][0]["noise"] for d in drawn]
    rest = 1 - 0.03 - 0.05 - 0.01
    chi2(["none" if n is None else n["kind"] for n in ns],
         {"none": 0.2, "uniform": 0.8 * 0.03, "speckle": 0.8 * 0.05, "salt_pepper": 0.8 * 0.01,
          "gaussian": 0.8 * rest * 0.6, "poisson": 0.8 * rest * 0.4})
    space = {"luma": 0.4, "chroma": 0.1, "gray": 0.5 * 0.3, "rgb": 0.5 * 0.7}
    g = [n for n in ns if n and n["kind"] == "gaussian"]
    chi2([n.get("space") or ("gray" if n["gray"] else "rgb") for n in g], space)
    assert all(("gray" in n) != ("space" in n) for n in g)
    chi2([n["space"] for n in ns if n and n["kind"] in ("uniform", "speckle")], space)
    pois = [n for n in ns if n and n["kind"] == "poisson"]
    binom(sum(n["gray"] for n in pois), len(pois), 0.3)
    assert all("space" not in n for n in pois)
    ks_uniform([n["sigma"] for n in ns if n and n["kind"] == "speckle"], 5.0, 30.0)
    ks_uniform([n["amplitude"] for n in ns if n and n["kind"] == "uniform"], 1.0, 20.0)
    ks_uniform([n["sigma"] for n in g], 1.0, 20.0)


def test_extra_steps(drawn):
    s1 = [d["stages"][0] for d in drawn]
    binom(sum("halo" in s for s in s1), len(s1), 0.1)
    binom(sum("banding" in s for s in s1), len(s1), 0.03)
    binom(sum("dither" in s for s in s1), len(s1), 0.02)
    assert not any("color" in s for d in drawn for s in d["stages"])       # opt-in only
    halos = [s["halo"] for s in s1 if "halo" in s]
    ks_uniform([h["amount"] for h in halos], 0.3, 1.2)
    ks_uniform([h["radius"] for h in halos], 0.8, 2.0)
    chi2([s["banding"]["bits"] for s in s1 if "banding" in s], {5: 1, 6: 1})
    assert all(8 <= s["dither"]["levels"] <= 32 for s in s1 if "dither" in s)


def test_shuffle_order_frequencies(drawn):
    """Stage 2 of realworld can take blur, resize, halo, noise: each of the 24 orders with probability 1/24; the
    fixed stage 1 records no order."""
    orders = [tuple(d["stages"][1]["steps"]) for d in drawn]
    chi2(orders, {p: 1.0 for p in itertools.permutations(("blur", "resize", "halo", "noise"))})
    assert all("steps" not in d["stages"][0] for d in drawn)
    # the order does not depend on what was drawn in the stage
    with_halo = [tuple(d["stages"][1]["steps"]) for d in drawn if "halo" in d["stages"][1]]
    chi2([o.index("halo") for o in with_halo], {0: 1, 1: 1, 2: 1, 3: 1})


def test_shuffle_three_steps():
    cfg = DegradeConfig(order=1, usm=UsmConfig(enabled=False), stages=(StageConfig(
        blur_prob=0.5, noise_prob=0.0, jpeg_prob=1.0, step_order="shuffle"),), final=FinalConfig())
    rng = np.random.default_rng(5)
    orders = [sample(rng, cfg).stages[0].steps for _ in range(10000)]
    chi2(orders, {p: 1.0 for p in itertools.permutations(("blur", "resize", "jpeg"))})


def _stream(cfg, seed=7, n=300):
    rng = np.random.default_rng(seed)
    recs = [json.dumps(sample(rng, cfg).to_dict()) for _ in range(n)]
    return recs, rng.uniform()


def test_zero_probabilities_draw_nothing():
    """New ranges/choices set but every new probability 0 (and single choices): the same records and the same
    RNG state as the plain preset -- the guard that keeps realesrgan byte for byte."""
    base = preset("realesrgan")
    k = dataclasses.replace(base.stages[0].kernel, box_size=(2.0, 5.0), motion_angle=(0.0, 10.0),
                            median_sizes=(5, 7, 9))
    r = dataclasses.replace(base.stages[0].resize, filters=("box", "lanczos3"), filter_weights=(0.5, 0.5),
                            antialias_prob=1.0, down_up=(0.2, 0.3))
    n = dataclasses.replace(base.stages[0].noise, uniform_amplitude=(3.0, 4.0), salt_ratio=(0.1, 0.2))
    st = dataclasses.replace(base.stages[0], kernel=k, resize=r, noise=n, banding=dataclasses.replace(
        base.stages[0].banding, bits=(2, 3, 4)))
    cfg = dataclasses.replace(base, stages=(st, base.stages[1]),
                              final=dataclasses.replace(base.final, filters=("box",), antialias_prob=0.5))
    assert cfg != base
    assert _stream(cfg) == _stream(base)
    # and a non-zero one does change the stream (the test can fail)
    cfg2 = dataclasses.replace(base, stages=(dataclasses.replace(st, halo_prob=0.5), base.stages[1]))
    assert _stream(cfg2) != _stream(base)


def test_weighted_choice_matches_weights():
    """A filter choice with explicit weights vs the uniform one."""
    r = ResizeConfig(filter_prob=1.0, filters=("box", "mitchell", "lanczos3"), filter_weights=(0.6, 0.3, 0.1))
    cfg = DegradeConfig(order=1, usm=UsmConfig(enabled=False), final=FinalConfig(),
                        stages=(StageConfig(blur_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, resize=r),))
    rng = np.random.default_rng(9)
    ps = [sample(rng, cfg).stages[0].resize for _ in range(10000)]
    chi2([p.filter for p in ps], {"box": 0.6, "mitchell": 0.3, "lanczos3": 0.1})
    assert all(p.mode is None and p.antialias is False for p in ps)
    r = dataclasses.replace(r, filter_weights=())
    cfg = dataclasses.replace(cfg, stages=(dataclasses.replace(cfg.stages[0], resize=r),))
    ps = [sample(rng, cfg).stages[0].resize for _ in range(10000)]
    chi2([p.filter for p in ps], {"box": 1, "mitchell": 1, "lanczos3": 1})


def test_noise_and_kernel_instead_probabilities():
    cfg = DegradeConfig(order=1, usm=UsmConfig(enabled=False), final=FinalConfig(), stages=(StageConfig(
        kernel=KernelConfig(box_prob=0.2, disk_prob=0.2, motion_prob=0.1, median_prob=0.1, sinc_prob=0.5),
        noise=NoiseConfig(uniform_prob=0.25, speckle_prob=0.25, salt_pepper_prob=0.25, gaussian_prob=1.0),
        jpeg_prob=0.0),))
    rng = np.random.default_rng(4)
    ps = [sample(rng, cfg).stages[0] for _ in range(10000)]
    probs = {"box": 0.2, "disk": 0.2, "motion": 0.1, "median": 0.1, "sinc": 0.4 * 0.5}
    probs.update({k: 0.4 * 0.5 * w for k, w in SIX.items()})
    chi2([p.blur.kind for p in ps], probs)
    chi2([p.noise.kind for p in ps], {"uniform": 0.25, "speckle": 0.25, "salt_pepper": 0.25, "gaussian": 0.25})
    sp = [p.noise for p in ps if p.noise.kind == "salt_pepper"]
    ks_uniform([n.amount for n in sp], 0.001, 0.01)
    ks_uniform([n.salt_ratio for n in sp], 0.3, 0.7)
    binom(sum(n.gray for n in sp), len(sp), 0.4)
