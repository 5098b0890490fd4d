"""The Real-ESRGAN high-order degradation: draw parameters (`sample`), apply them (`apply`).

`sample(rng, config, pool)` draws every random choice of one sample into a frozen `DegradeParams` (it does not
know the image size); `apply(hr, params, pool)` is a pure function of its inputs: the noise fields come from
integer seeds recorded in the params.  Order of operations (spec/realesrgan-model.md section 3):

    USM(HR) -> for each stage: [blur] -> resize -> [halo] -> [noise] -> [color] -> [banding] -> [dither]
    -> [compression] (or a recorded shuffled order) -> final (A: resize, sinc, compression
    | B: compression, resize, sinc) -> quantise

The issue-11 kinds (docs/design.md, "The issue-11 vocabulary") are drawn only when their probability is > 0
or their choice has more than one option, so the Real-ESRGAN presets consume the RNG exactly as before.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from degradekit.config import STEPS, DegradeConfig, stage_config, validate_config
from degradekit.kernels import MAX_KERNEL_SIZE, _choose, build_kernel, sample_final_sinc, sample_kernel
from degradekit.ops.blur import blur
from degradekit.ops.jpeg import jpeg
from degradekit.ops.noise import add_gaussian_noise, add_noise_patch, add_poisson_noise
from degradekit.ops.quantize import to_uint8
from degradekit.ops.resize import resize
from degradekit.ops.usm import usm_sharpen
from degradekit.params import (BandingParams, ColorParams, CompressionParams, DegradeParams, DitherParams,
                               DownUpParams, FinalParams, HaloParams, NoiseParams, ResizeParams, StageParams,
                               UsmParams)

#: noise seeds are drawn from [0, 2**53) so that every JSON reader keeps them exact
SEED_BOUND = 2 ** 53


# ------------------------------------------------------------------------------------------------- sampling

def check_pool(config: DegradeConfig, pool) -> None:
    """Pool probabilities > 0 need a pool with ids; checked before anything is drawn."""
    used = set()
    for i in range(1, config.order + 1):
        st = stage_config(config, i)
        if st.blur_prob > 0 and st.kernel.pool_prob > 0:
            used.add("kernel")
        if st.noise_prob > 0 and st.noise.pool_prob > 0:
            used.add("noise")
    if not used:
        return
    if pool is None:
        raise ValueError(f"the config draws {' and '.join(sorted(used))} from a pool (pool_prob > 0), "
                         "but no pool was given")
    if "kernel" in used and not pool.kernel_ids(config.scale):
        raise ValueError(f"the pool has no kernels for scale {config.scale}")
    if "noise" in used and not pool.noise_ids():
        raise ValueError("the pool has no noise patches")


def _choice(rng: np.random.Generator, choices: tuple, weights: tuple = ()):
    """One of `choices`: no draw for a single choice, rng.integers when uniform (as 0.1), else weighted."""
    if len(choices) == 1:
        return choices[0]
    if not weights:
        return choices[int(rng.integers(len(choices)))]
    return choices[_choose(rng, weights)]


def _int_range(rng: np.random.Generator, lo_hi) -> int:
    lo, hi = lo_hi
    return int(lo) if lo == hi else int(rng.integers(lo, hi + 1))


def _sample_resampler(rng: np.random.Generator, rcfg) -> tuple[str | None, str | None, bool | None]:
    """(mode, filter, antialias): a filter with probability filter_prob (no draw when 0), else a mode."""
    if rcfg.filter_prob > 0 and rng.uniform() < rcfg.filter_prob:
        filt = _choice(rng, rcfg.filters, rcfg.filter_weights)
        # "nearest" ignores the flag; 0 draws nothing (interpolating, as OpenCV)
        aa = bool(rng.uniform() < rcfg.antialias_prob) if rcfg.antialias_prob > 0 and filt != "nearest" else False
        return None, filt, aa
    return rcfg.modes[int(rng.integers(len(rcfg.modes)))], None, None


def _sample_resize(rng: np.random.Generator, rcfg) -> ResizeParams:
    u = rng.uniform()
    if u < rcfg.up_prob:
        direction, factor = "up", float(rng.uniform(*rcfg.up))
    elif u < rcfg.up_prob + rcfg.down_prob:
        direction, factor = "down", float(rng.uniform(*rcfg.down))
    else:
        direction, factor = "keep", 1.0
    mode, filt, aa = _sample_resampler(rng, rcfg)
    down_up = None
    if rcfg.down_up_prob > 0 and rng.uniform() < rcfg.down_up_prob:
        f = float(rng.uniform(*rcfg.down_up))
        m2, f2, aa2 = _sample_resampler(rng, rcfg)
        down_up = DownUpParams(factor=f, mode=m2, filter=f2, antialias=aa2)
    return ResizeParams(direction=direction, factor=factor, mode=mode, size_ref=rcfg.size_ref, filter=filt,
                        antialias=aa, down_up=down_up)


def _sample_space(rng: np.random.Generator, ncfg) -> str:
    """"luma"/"chroma" with their probabilities (no draw when both are 0), else gray/rgb by gray_prob."""
    if ncfg.luma_prob + ncfg.chroma_prob > 0:
        u = rng.uniform()
        if u < ncfg.luma_prob:
            return "luma"
        if u < ncfg.luma_prob + ncfg.chroma_prob:
            return "chroma"
    return "gray" if rng.uniform() < ncfg.gray_prob else "rgb"


def _sample_noise(rng: np.random.Generator, ncfg, pool) -> NoiseParams:
    if ncfg.pool_prob > 0 and rng.uniform() < ncfg.pool_prob:
        ids = pool.noise_ids()
        return NoiseParams(kind="pool", pool_id=str(ids[int(rng.integers(len(ids)))]),
                           u=float(rng.uniform()), v=float(rng.uniform()))
    seed = int(rng.integers(SEED_BOUND))
    extra = ncfg.uniform_prob + ncfg.speckle_prob + ncfg.salt_pepper_prob
    if extra > 0:
        u = rng.uniform()
        if u < ncfg.uniform_prob:
            a = float(rng.uniform(*ncfg.uniform_amplitude))
            return NoiseParams(kind="uniform", seed=seed, amplitude=a, space=_sample_space(rng, ncfg))
        if u < ncfg.uniform_prob + ncfg.speckle_prob:
            sigma = float(rng.uniform(*ncfg.speckle_sigma))
            return NoiseParams(kind="speckle", seed=seed, sigma=sigma, space=_sample_space(rng, ncfg))
        if u < extra:
            amount = float(rng.uniform(*ncfg.salt_pepper_amount))
            ratio = float(rng.uniform(*ncfg.salt_ratio))
            gray = bool(rng.uniform() < ncfg.gray_prob)
            return NoiseParams(kind="salt_pepper", seed=seed, amount=amount, salt_ratio=ratio, gray=gray)
    if rng.uniform() < ncfg.gaussian_prob:
        sigma = float(rng.uniform(*ncfg.gaussian_sigma))
        if ncfg.luma_prob + ncfg.chroma_prob > 0:
            space = _sample_space(rng, ncfg)
            if space in ("luma", "chroma"):
                return NoiseParams(kind="gaussian", seed=seed, sigma=sigma, space=space)
            return NoiseParams(kind="gaussian", seed=seed, gray=space == "gray", sigma=sigma)
        gray = bool(rng.uniform() < ncfg.gray_prob)
        return NoiseParams(kind="gaussian", seed=seed, gray=gray, sigma=sigma)
    scale = float(rng.uniform(*ncfg.poisson_scale))
    gray = bool(rng.uniform() < ncfg.gray_prob)
    return NoiseParams(kind="poisson", seed=seed, gray=gray, scale=scale)


def _sample_quality(rng: np.random.Generator, jcfg) -> int:
    # integer quality for a real codec: round(U(lo, hi))
    return int(round(rng.uniform(*jcfg.quality)))


def _sample_compression(rng: np.random.Generator, jcfg, ccfg) -> tuple[int | None, CompressionParams | None]:
    """(jpeg_quality, None) for JPEG 4:2:0 (the 0.1 record), else (None, CompressionParams)."""
    w = ccfg.weights
    if w.jpeg == 1.0:  # the weights sum to 1: JPEG only (every preset's stages), nothing to draw
        codec = "jpeg"
    else:
        used = w.used()
        codec = _choice(rng, used, tuple(getattr(w, c) for c in used))
    if codec == "jpeg":
        q = _sample_quality(rng, jcfg)
        sub = _choice(rng, jcfg.subsampling, jcfg.subsampling_weights)
        return (q, None) if sub == "420" else (None, CompressionParams(codec="jpeg", quality=q, subsampling=sub))
    if codec == "webp":
        return None, CompressionParams(codec="webp", quality=_int_range(rng, ccfg.webp.quality))
    if codec == "avif":
        return None, CompressionParams(codec="avif", quality=_int_range(rng, ccfg.avif.quality),
                                       speed=_int_range(rng, ccfg.avif.speed))
    if codec == "jpeg2000":
        return None, CompressionParams(codec="jpeg2000", rate=float(rng.uniform(*ccfg.jpeg2000.rate)))
    vc = getattr(ccfg, codec)
    return None, CompressionParams(codec=codec, quality=_int_range(rng, vc.quality),
                                   preset=_choice(rng, vc.presets), pix_fmt=_choice(rng, vc.pix_fmts))


def _uniform4(rng, *ranges) -> tuple[float, ...]:
    return tuple(float(rng.uniform(*r)) for r in ranges)


def _sample_extras(rng: np.random.Generator, st) -> dict:
    """The optional steps (each drawn only when its probability is > 0), in the fixed order."""
    out = {}
    if st.halo_prob > 0 and rng.uniform() < st.halo_prob:
        h = st.halo
        out["halo"] = HaloParams(*_uniform4(rng, h.amount, h.radius, h.threshold))
    if st.color_prob > 0 and rng.uniform() < st.color_prob:
        c = st.color
        out["color"] = ColorParams(*_uniform4(rng, c.brightness, c.contrast, c.saturation, c.gamma))
    if st.banding_prob > 0 and rng.uniform() < st.banding_prob:
        out["banding"] = BandingParams(bits=int(_choice(rng, st.banding.bits)))
    if st.dither_prob > 0 and rng.uniform() < st.dither_prob:
        out["dither"] = DitherParams(levels=_int_range(rng, st.dither.levels), method=_choice(rng, st.dither.methods))
    return out


def sample(rng: np.random.Generator, config: DegradeConfig, pool=None) -> DegradeParams:
    """Draw one sample's degradation parameters.

    rng: the only source of randomness; config: a DegradeConfig (validated here, once per distinct config);
    pool: an object with the pool protocol (docs/design.md), needed when a pool_prob > 0.
    Returns a frozen DegradeParams with `config.order` stages.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    validate_config(config)
    check_pool(config, pool)
    stages = []
    for i in range(1, config.order + 1):
        st = stage_config(config, i)
        kernel = None
        if rng.uniform() < st.blur_prob:
            kernel = sample_kernel(rng, st.kernel, pool=pool, scale=config.scale)
        rz = _sample_resize(rng, st.resize)
        noise = _sample_noise(rng, st.noise, pool) if rng.uniform() < st.noise_prob else None
        quality, comp = (_sample_compression(rng, st.jpeg, st.compression) if rng.uniform() < st.jpeg_prob
                         else (None, None))
        extras = _sample_extras(rng, st)
        steps = None
        if st.step_order == "shuffle":
            can = st.steps()
            steps = tuple(can[j] for j in rng.permutation(len(can)))
        stages.append(StageParams(blur=kernel, resize=rz, noise=noise, jpeg_quality=quality, compression=comp,
                                  steps=steps, **extras))
    fc = config.final
    resize_first = bool(rng.uniform() < fc.resize_first_prob)
    mode, filt, aa = _sample_resampler(rng, fc)
    sinc = sample_final_sinc(rng, fc)
    quality, comp = _sample_compression(rng, fc.jpeg, fc.compression)
    u = config.usm
    usm = UsmParams(radius=u.radius, sigma=u.sigma, weight=u.weight, threshold=u.threshold) if u.enabled else None
    return DegradeParams(scale=config.scale, usm=usm, stages=tuple(stages),
                         final=FinalParams(resize_first=resize_first, mode=mode, sinc=sinc, jpeg_quality=quality,
                                           filter=filt, antialias=aa, compression=comp))


# ------------------------------------------------------------------------------------------------- applying

def _check_hr(hr) -> np.ndarray:
    if not isinstance(hr, np.ndarray):
        raise TypeError(f"hr: expected a numpy array, got {type(hr).__name__}")
    if hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"hr: expected a uint8 HxWx3 RGB image, got {hr.dtype} {hr.shape}")
    if hr.shape[0] < MAX_KERNEL_SIZE or hr.shape[1] < MAX_KERNEL_SIZE:
        raise ValueError(f"hr: {hr.shape[0]}x{hr.shape[1]} is smaller than the largest kernel "
                         f"({MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE})")
    return hr


def _resize_target(hw: tuple[int, int], final_hw: tuple[int, int], rp: ResizeParams) -> tuple[int, int]:
    if rp.size_ref == "final":
        # (!) the reference's stage 2: relative to the final LR size, not to the current image
        return max(1, int(final_hw[0] * rp.factor)), max(1, int(final_hw[1] * rp.factor))
    return max(1, math.floor(hw[0] * rp.factor)), max(1, math.floor(hw[1] * rp.factor))


def _add_noise(img: np.ndarray, n: NoiseParams, pool) -> np.ndarray:
    if n.kind == "gaussian":
        if n.space is None:
            return add_gaussian_noise(img, n.sigma, n.gray, n.seed)
        from degradekit.ops.noise_kinds import add_gaussian_noise_space

        return add_gaussian_noise_space(img, n.sigma, n.space, n.seed)
    if n.kind == "poisson":
        return add_poisson_noise(img, n.scale, n.gray, n.seed)
    if n.kind in ("uniform", "speckle", "salt_pepper"):
        from degradekit.ops import noise_kinds as nk

        if n.kind == "uniform":
            return nk.add_uniform_noise(img, n.amplitude, n.space, n.seed)
        if n.kind == "speckle":
            return nk.add_speckle_noise(img, n.sigma, n.space, n.seed)
        return nk.add_salt_pepper(img, n.amount, n.salt_ratio, n.gray, n.seed)
    if pool is None:
        raise ValueError(f"noise patch {n.pool_id!r} comes from a pool, but no pool was given")
    return add_noise_patch(img, np.asarray(pool.noise(n.pool_id), dtype=np.float32), n.u, n.v)


def _blur(img: np.ndarray, k, pool) -> np.ndarray:
    if k.kind == "median":
        from degradekit.ops.median import median_blur

        return median_blur(img, k.size)
    return blur(img, build_kernel(k, pool))


def _resample(img: np.ndarray, hw: tuple[int, int], mode, filt, antialias) -> np.ndarray:
    """An OpenCV mode (today's ops.resize) or an ops.resample filter."""
    if filt is None:
        return resize(img, hw, mode)
    from degradekit.ops.resample import resample

    return resample(img, hw, filt, bool(antialias))


def _stage_resize(img: np.ndarray, final_hw: tuple[int, int], rp: ResizeParams) -> np.ndarray:
    target = _resize_target(img.shape[:2], final_hw, rp)
    du = rp.down_up
    if du is not None:
        mid = (max(1, math.floor(target[0] * du.factor)), max(1, math.floor(target[1] * du.factor)))
        img = _resample(img, mid, du.mode, du.filter, du.antialias)
    return _resample(img, target, rp.mode, rp.filter, rp.antialias)


def _compress(img: np.ndarray, jpeg_quality, c: CompressionParams | None) -> np.ndarray:
    if c is None:
        return jpeg(img, jpeg_quality)
    if c.codec == "jpeg":
        return jpeg(img, c.quality, c.subsampling)
    if c.codec == "webp":
        from degradekit.ops.webp import webp

        return webp(img, c.quality)
    if c.codec == "avif":
        from degradekit.ops.avif import avif

        return avif(img, c.quality, c.speed)
    if c.codec == "jpeg2000":
        from degradekit.ops.jpeg2000 import jpeg2000

        return jpeg2000(img, c.rate)
    from degradekit.ops.video import video

    return video(img, c.codec, c.quality, c.preset, c.pix_fmt)


def _extra_step(img: np.ndarray, step: str, p) -> np.ndarray:
    if step == "halo":
        from degradekit.ops.halo import oversharpen

        return oversharpen(img, p.amount, p.radius, p.threshold)
    if step == "color":
        from degradekit.ops.color import color_jitter

        return color_jitter(img, p.brightness, p.contrast, p.saturation, p.gamma)
    if step == "banding":
        from degradekit.ops.banding import band

        return band(img, p.bits)
    from degradekit.ops.dither import dither

    return dither(img, p.levels, p.method)


_EXTRA_STEPS = ("halo", "color", "banding", "dither")


def _run_stage(img: np.ndarray, st: StageParams, i: int, final_hw, pool, note) -> np.ndarray:
    """One stage's steps in the fixed order (the optional ones only when taken) or in the recorded order."""
    for step in st.steps if st.steps is not None else STEPS:
        if step == "blur":
            if st.blur is not None:
                img = _blur(img, st.blur, pool)
        elif step == "resize":
            img = _stage_resize(img, final_hw, st.resize)
        elif step == "noise":
            if st.noise is not None:
                img = _add_noise(img, st.noise, pool)
        elif step == "jpeg":
            if st.jpeg_quality is not None or st.compression is not None:
                img = _compress(img, st.jpeg_quality, st.compression)
        else:
            p = getattr(st, step)
            if p is None:
                if st.steps is None:
                    continue  # fixed order: an optional step not taken is not listed
            else:
                img = _extra_step(img, step, p)
        note(f"{step}{i}", img)
    return img


def _as_params(params) -> DegradeParams:
    if isinstance(params, dict):
        params = DegradeParams.from_dict(params)
    if not isinstance(params, DegradeParams):
        raise TypeError(f"params: expected DegradeParams or its dict, got {type(params).__name__}")
    return params


def _start(hr: np.ndarray, params: DegradeParams) -> np.ndarray:
    """The float32 HR in [0, 1] after the unsharp mask: what stage 1 blurs (shared by every draw on this HR)."""
    img = hr.astype(np.float32) * np.float32(1.0 / 255.0)
    if params.usm is not None:
        u = params.usm
        img = usm_sharpen(img, radius=u.radius, sigma=u.sigma, weight=u.weight, threshold=u.threshold)
    return img


def _run(hr: np.ndarray, params: DegradeParams, pool, emit: Callable[[str, np.ndarray], None] | None,
         start: np.ndarray | None = None):
    hr = _check_hr(hr)
    params = _as_params(params)
    note = emit if emit is not None else (lambda name, img: None)
    final_hw = (hr.shape[0] // params.scale, hr.shape[1] // params.scale)

    img = _start(hr, params) if start is None else start
    note("usm", img)
    for i, st in enumerate(params.stages, start=1):
        img = _run_stage(img, st, i, final_hw, pool, note)

    f = params.final
    steps = ("resize", "sinc", "jpeg") if f.resize_first else ("jpeg", "resize", "sinc")
    for step in steps:
        if step == "resize":
            img = _resample(img, final_hw, f.mode, f.filter, f.antialias)
        elif step == "sinc":
            if f.sinc is not None:
                img = blur(img, build_kernel(f.sinc, pool))
        else:
            img = _compress(img, f.jpeg_quality, f.compression)
        note(f"final_{step}", img)
    lr = to_uint8(img)
    note("final", lr)
    return lr


def apply(hr: np.ndarray, params: DegradeParams | dict, pool=None) -> np.ndarray:
    """Degrade one HR image with recorded parameters.

    hr: uint8 HxWx3 RGB, H, W >= 21; params: DegradeParams or its to_dict() form; pool: needed only for
    "pool" kernels/noise.  Returns the uint8 (H // scale) x (W // scale) x 3 RGB LR.  A pure function: the same
    inputs give the same bytes.
    """
    return _run(hr, params, pool, None)


def apply_variants(hr: np.ndarray, params_list, pool=None) -> list[np.ndarray]:
    """apply(hr, p, pool) for every p in params_list (K draws on one HR, as `synth --variants K` renders),
    with the unsharp mask of the HR computed once per distinct USM setting instead of once per draw.
    Returns the LRs in order, byte-identical to separate apply() calls."""
    hr = _check_hr(hr)
    starts: dict = {}
    out = []
    for p in params_list:
        p = _as_params(p)
        if p.usm not in starts:
            starts[p.usm] = _start(hr, p)
        out.append(_run(hr, p, pool, None, starts[p.usm]))
    return out


def apply_stages(hr: np.ndarray, params: DegradeParams | dict, pool=None) -> list[tuple[str, np.ndarray]]:
    """Like apply, but returns every intermediate image, for previews.

    [("usm", f32), then per stage i: ("blur{i}", f32), ("resize{i}", f32), ("noise{i}", f32), ("jpeg{i}", f32),
    then the final step's three entries in the order applied ("final_resize", "final_sinc", "final_jpeg";
    order B starts with "final_jpeg"), then ("final", uint8)].  Skipped steps are listed with the image
    unchanged, so the names depend only on the order and on the final step's A/B choice.  float32 images are
    HxWx3 RGB, nominally in [0, 1] (may slightly leave it after bicubic resize or sinc); the last entry equals
    apply(hr, params, pool).
    """
    out: list[tuple[str, np.ndarray]] = []
    _run(hr, params, pool, lambda name, img: out.append((name, img)))
    return out


def degrade(hr: np.ndarray, config: DegradeConfig, seed: int, pool=None) -> tuple[np.ndarray, DegradeParams]:
    """Sample with np.random.default_rng(seed) and apply: returns (uint8 LR, params)."""
    params = sample(np.random.default_rng(seed), config, pool)
    return apply(hr, params, pool), params
