"""Applying a drawn BSRGAN degradation: pure functions of (hr, params).

float32 RGB in [0, 1] throughout. Clipped where the published code clips: after every resize, the
pre-halving, the noises; blurs are not clipped (positive kernels). JPEG (libjpeg via OpenCV, integer
quality) is the only 8-bit rounding besides the plus variant's Poisson step, so the LR is exactly the
final JPEG's 8-bit output. The published final random LR crop is replaced by synth's patching: the whole
(mod-cropped) HR is degraded and LR = HR // scale.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..ops.blur import blur
from ..ops.jpeg import jpeg
from ..ops.noise import add_gaussian_noise, standard_normal
from ..ops.quantize import to_uint8
from ..ops.resize import resize
from ..ops.usm import usm_sharpen
from .imresize import imresize
from .kernels import anisotropic_gaussian, fspecial_gaussian, nearest_kernel
from .params import Blur, BsrganParams, DownA, DownB, Jpeg, Noise, Poisson, Resize, Skip

__all__ = ["apply_bsrgan", "apply_bsrgan_stages", "hr_target", "mod_crop", "blur_kernel", "mixing_matrix"]

_CV2 = {"linear": "bilinear", "cubic": "bicubic", "area": "area"}


def mod_crop(hr: np.ndarray, scale: int) -> np.ndarray:
    """hr[:H - H % scale, :W - W % scale] (rows, then columns: the fixed (h, w) order, spec §1)."""
    h, w = hr.shape[:2]
    return hr[:h - h % scale, :w - w % scale]


def blur_kernel(step: Blur) -> np.ndarray:
    """The float64 (k, k) kernel of a blur step (symmetric: convolution = correlation)."""
    if step.kind == "aniso":
        return anisotropic_gaussian(step.size, step.l1, step.l2, step.theta)
    return fspecial_gaussian(step.size, step.sigma)


def _clip(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0.0, 1.0, out=img)


def _cv2_resize(img: np.ndarray, hw: tuple[int, int], interp: str, antialias: bool) -> np.ndarray:
    """cv2.resize with code 1/2/3, then clip. With the (ours) antialias option a shrinking linear/cubic resize
    is MATLAB-style antialiased (triangle / Keys a = -0.75, the kernels OpenCV uses) at the same size."""
    h, w = img.shape[:2]
    if antialias and interp != "area" and (hw[0] < h or hw[1] < w):
        out = imresize(img, size_hw=hw, kernel="linear" if interp == "linear" else "cubic", a=-0.75)
    else:
        out = resize(img, hw, _CV2[interp])
    return _clip(out)


def mixing_matrix(cov) -> np.ndarray:
    """(3, 3) float64 A with z @ A ~ N(0, cov) for z ~ N(0, I): sqrt(s)[:, None] * v from svd(cov), the
    factor numpy's multivariate_normal uses."""
    _, s, vt = np.linalg.svd(np.asarray(cov, np.float64))
    return np.sqrt(s)[:, None] * vt


def _noise(img: np.ndarray, st: Noise) -> np.ndarray:
    """Gaussian (x + n) or speckle (x clipped, then x + x n) noise, clipped; n = z @ a with z from the seed:
    gray one field (a = [sigma, sigma, sigma]), colour three (a = sigma I), correlated a = mixing_matrix(cov)."""
    h, w, _ = img.shape
    if st.kind == "gaussian" and st.branch != "correlated":
        return add_gaussian_noise(img, float(st.level), st.branch == "gray", st.seed)  # the engine's op
    sigma = st.level / 255.0
    if st.branch == "correlated":
        a = mixing_matrix(st.cov)
    elif st.branch == "gray":
        a = np.full((1, 3), sigma)
    else:
        a = np.eye(3) * sigma
    z = standard_normal(h * w * a.shape[0], st.seed).reshape(h * w, a.shape[0])
    out = np.empty_like(img)
    _add_field(img.reshape(h * w, 3), z, a, st.kind == "speckle", out.reshape(h * w, 3))
    return out


@njit(cache=True, nogil=True)
def _add_field(img, z, a, speckle, out):
    """out = clip(x + n) or, speckle, clip(c + c n) with c = clip(x); n[i] = float32(z[i] @ a) (float64 sums).
    img, out (n, 3) float32; z (n, k) float32; a (k, 3) float64."""
    k = z.shape[1]
    for i in range(img.shape[0]):
        for ch in range(3):
            acc = 0.0
            for j in range(k):
                acc += np.float64(z[i, j]) * a[j, ch]
            n = np.float32(acc)
            x = img[i, ch]
            if speckle:
                x = min(max(x, np.float32(0.0)), np.float32(1.0))
                v = x + x * n
            else:
                v = x + n
            out[i, ch] = min(max(v, np.float32(0.0)), np.float32(1.0))


def _poisson(img: np.ndarray, st: Poisson) -> np.ndarray:
    """B:398-409 in float64 (the published mixes float32/64), returned as float32."""
    x = np.clip(np.rint(img.astype(np.float64) * 255.0), 0, 255) / 255.0
    rng = np.random.default_rng(st.seed)
    if not st.gray:
        out = rng.poisson(x * st.vals) / st.vals
    else:
        g = np.clip(np.rint((x @ np.array([0.299, 0.587, 0.114])) * 255.0), 0, 255) / 255.0
        out = x + (rng.poisson(g * st.vals) / st.vals - g)[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _run(hr: np.ndarray, p: BsrganParams, stages: list | None) -> np.ndarray:
    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"apply_bsrgan: expected uint8 HxWx3 RGB, got {getattr(hr, 'dtype', type(hr))} "
                         f"{getattr(hr, 'shape', '')}")
    hr = mod_crop(hr, p.scale)
    hh, ww = hr.shape[:2]
    if min(hh, ww) < 2 * p.scale:  # s1 < 2 sf: downsample-A keeps at least 1 px
        raise ValueError(f"apply_bsrgan: HR {ww}x{hh} is too small for x{p.scale} (at least "
                         f"{2 * p.scale} px per side)")
    img = hr.astype(np.float32) / np.float32(255.0)
    if p.use_sharp:  # plus: the HR target is sharpened too (hr_target)
        img = usm_sharpen(img)

    def keep(label):
        if stages is not None:
            stages.append((label, img))

    keep("hr")
    if p.prehalve is not None:  # B:458-464
        half = (int(1 / 2 * img.shape[0]), int(1 / 2 * img.shape[1]))
        if p.prehalve.method == "cv2":
            img = _cv2_resize(img, half, p.prehalve.interp, p.antialias)
        else:
            img = _clip(imresize(img, scale=0.5))
        keep("prehalve")
    sf, ab = p.sf, None
    for i, (op, st) in enumerate(zip(p.order, p.steps)):
        if isinstance(st, Blur):
            img = blur(img, blur_kernel(st))
        elif isinstance(st, DownA):  # B:480-491: a, b = the size here, for downsample-B
            ab = img.shape[:2]
            if st.method == "cv2":
                hw = (int(1 / st.s1 * ab[0]), int(1 / st.s1 * ab[1]))
                img = _cv2_resize(img, (max(1, hw[0]), max(1, hw[1])), st.interp, p.antialias)
            else:
                img = _clip(np.ascontiguousarray(blur(img, nearest_kernel(st.sigma, sf))[0::sf, 0::sf]))
        elif isinstance(st, DownB):  # B:493-496
            img = _cv2_resize(img, (int(1 / sf * ab[0]), int(1 / sf * ab[1])), st.interp, p.antialias)
        elif isinstance(st, Noise):
            img = _noise(img, st)
        elif isinstance(st, Jpeg):
            img = jpeg(img, st.quality)
        elif isinstance(st, Resize):  # plus, B:349-360 (at least 1 px: the published code would fail)
            h, w = img.shape[:2]
            img = _cv2_resize(img, (max(1, int(st.factor * h)), max(1, int(st.factor * w))), st.interp,
                              p.antialias)
        elif isinstance(st, Poisson):
            img = _poisson(img, st)
        else:
            assert isinstance(st, Skip)
        keep(f"{i + 1}:{st.what if isinstance(st, Skip) else st.op}")
    if p.variant == "plus":  # B:600, size from the HR; clipped here, by the JPEG there: the same bytes
        img = _cv2_resize(img, (int(1 / p.scale * hh), int(1 / p.scale * ww)), p.final_interp, p.antialias)
        keep("final_resize")
    img = jpeg(img, p.final_quality)
    keep("final_jpeg")
    lr = to_uint8(img)
    if lr.shape[:2] != (hh // p.scale, ww // p.scale):  # the published sizes guarantee it (spec §4)
        raise AssertionError(f"apply_bsrgan: LR {lr.shape[:2]} is not HR {hh}x{ww} // {p.scale}")
    if stages is not None:
        stages.append(("final", lr))
    return lr


def _params(params) -> BsrganParams:
    return BsrganParams.from_dict(params) if isinstance(params, dict) else params


def apply_bsrgan(hr: np.ndarray, params: BsrganParams | dict) -> np.ndarray:
    """Degrade ``hr`` (uint8 HxWx3 RGB, mod-cropped to a multiple of scale, each side >= 2 scale) as
    ``params`` says. Returns uint8 (H // scale) x (W // scale) x 3. Pure: same inputs -> same bytes."""
    return _run(hr, _params(params), None)


def apply_bsrgan_stages(hr: np.ndarray, params: BsrganParams | dict) -> list[tuple[str, np.ndarray]]:
    """[(label, image after it)]: "hr", "prehalve" (when drawn), "<i>:<op>" per op in applied order (skipped
    ops with the image unchanged), "final_resize" (plus), "final_jpeg" (float32), "final" (uint8, equal to
    apply_bsrgan)."""
    out: list = []
    _run(hr, _params(params), out)
    return out


def hr_target(hr: np.ndarray, params: BsrganParams | dict) -> np.ndarray:
    """The HR that pairs with the LR: ``hr`` mod-cropped, unsharp-masked when params.use_sharp (plus)."""
    p = _params(params)
    cropped = mod_crop(hr, p.scale)
    if not p.use_sharp:
        return hr if cropped.shape == hr.shape else np.ascontiguousarray(cropped)
    hr = cropped
    return to_uint8(usm_sharpen(hr.astype(np.float32) / np.float32(255.0)))
