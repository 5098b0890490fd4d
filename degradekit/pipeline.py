"""The Real-ESRGAN high-order degradation: draw parameters (`sample`), apply them (`apply`).

`sample(rng, config, pool)` draws every random choice of one sample into a frozen `DegradeParams` (it does not
know the image size); `apply(hr, params, pool)` is a pure function of its inputs: the noise fields come from
integer seeds recorded in the params.  Order of operations (spec/realesrgan-model.md section 3):

    USM(HR) -> for each stage: [blur] -> resize -> [noise] -> [JPEG] -> final (A: resize, sinc, JPEG
    | B: JPEG, resize, sinc) -> quantise
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from degradekit.config import DegradeConfig, stage_config, validate_config
from degradekit.kernels import MAX_KERNEL_SIZE, build_kernel, sample_final_sinc, sample_kernel
from degradekit.ops.blur import blur
from degradekit.ops.jpeg import jpeg
from degradekit.ops.noise import add_gaussian_noise, add_noise_patch, add_poisson_noise
from degradekit.ops.quantize import to_uint8
from degradekit.ops.resize import resize
from degradekit.ops.usm import usm_sharpen
from degradekit.params import (DegradeParams, FinalParams, NoiseParams, ResizeParams, StageParams,
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


def _sample_resize(rng: np.random.Generator, rcfg) -> ResizeParams:
    u = rng.uniform()
    if u < rcfg.up_prob:
        direction, factor = "up", float(rng.uniform(*rcfg.up))
    elif u < rcfg.up_prob + rcfg.down_prob:
        direction, factor = "down", float(rng.uniform(*rcfg.down))
    else:
        direction, factor = "keep", 1.0
    mode = rcfg.modes[int(rng.integers(len(rcfg.modes)))]
    return ResizeParams(direction=direction, factor=factor, mode=mode, size_ref=rcfg.size_ref)


def _sample_noise(rng: np.random.Generator, ncfg, pool) -> NoiseParams:
    if ncfg.pool_prob > 0 and rng.uniform() < ncfg.pool_prob:
        ids = pool.noise_ids()
        return NoiseParams(kind="pool", pool_id=str(ids[int(rng.integers(len(ids)))]),
                           u=float(rng.uniform()), v=float(rng.uniform()))
    seed = int(rng.integers(SEED_BOUND))
    if rng.uniform() < ncfg.gaussian_prob:
        sigma = float(rng.uniform(*ncfg.gaussian_sigma))
        gray = bool(rng.uniform() < ncfg.gray_prob)
        return NoiseParams(kind="gaussian", seed=seed, gray=gray, sigma=sigma)
    scale = float(rng.uniform(*ncfg.poisson_scale))
    gray = bool(rng.uniform() < ncfg.gray_prob)
    return NoiseParams(kind="poisson", seed=seed, gray=gray, scale=scale)


def _sample_quality(rng: np.random.Generator, jcfg) -> int:
    # integer quality for a real codec: round(U(lo, hi))
    return int(round(rng.uniform(*jcfg.quality)))


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
        quality = _sample_quality(rng, st.jpeg) if rng.uniform() < st.jpeg_prob else None
        stages.append(StageParams(blur=kernel, resize=rz, noise=noise, jpeg_quality=quality))
    fc = config.final
    resize_first = bool(rng.uniform() < fc.resize_first_prob)
    mode = fc.modes[int(rng.integers(len(fc.modes)))]
    sinc = sample_final_sinc(rng, fc)
    quality = _sample_quality(rng, fc.jpeg)
    u = config.usm
    usm = UsmParams(radius=u.radius, sigma=u.sigma, weight=u.weight, threshold=u.threshold) if u.enabled else None
    return DegradeParams(scale=config.scale, usm=usm, stages=tuple(stages),
                         final=FinalParams(resize_first=resize_first, mode=mode, sinc=sinc, jpeg_quality=quality))


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
        return add_gaussian_noise(img, n.sigma, n.gray, n.seed)
    if n.kind == "poisson":
        return add_poisson_noise(img, n.scale, n.gray, n.seed)
    if pool is None:
        raise ValueError(f"noise patch {n.pool_id!r} comes from a pool, but no pool was given")
    return add_noise_patch(img, np.asarray(pool.noise(n.pool_id), dtype=np.float32), n.u, n.v)


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
        if st.blur is not None:
            img = blur(img, build_kernel(st.blur, pool))
        note(f"blur{i}", img)
        img = resize(img, _resize_target(img.shape[:2], final_hw, st.resize), st.resize.mode)
        note(f"resize{i}", img)
        if st.noise is not None:
            img = _add_noise(img, st.noise, pool)
        note(f"noise{i}", img)
        if st.jpeg_quality is not None:
            img = jpeg(img, st.jpeg_quality)
        note(f"jpeg{i}", img)

    f = params.final
    steps = ("resize", "sinc", "jpeg") if f.resize_first else ("jpeg", "resize", "sinc")
    for step in steps:
        if step == "resize":
            img = resize(img, final_hw, f.mode)
        elif step == "sinc":
            if f.sinc is not None:
                img = blur(img, build_kernel(f.sinc, pool))
        else:
            img = jpeg(img, f.jpeg_quality)
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
