"""MATLAB ``imresize`` (the published imresize_np, spec §8): separable, rows first, then columns.

Per axis of length n -> m, scale s (given, or m / n): output pixel x (1-based) is centred on
u = x / s + (1 - 1/s) / 2; the taps are the P = ceil(width) + 2 pixels from floor(u - width / 2), width 4
(cubic, Keys a = -0.5 by default) or 2 (linear). Below scale 1 with antialias the kernel is stretched by 1/s and
its weights multiplied by s. Weights are normalised per output pixel; a first / last tap column holding a zero
weight is dropped (the published narrow rule). Out-of-range taps read the image mirrored with edge
duplication (``cba|abc|cba``, MATLAB 'symmetric'). Output size ceil(n * s). float32 in and out; the weights
and the sums are float64 (the published torch code uses float32: the difference is float32 rounding), no
clipping, no rounding.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..ops._check import check_image

__all__ = ["imresize", "axis_weights"]


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (((a + 2.0) * ax3 - (a + 3.0) * ax2 + 1.0) * (ax <= 1.0)
            + (a * ax3 - 5.0 * a * ax2 + 8.0 * a * ax - 4.0 * a) * ((ax > 1.0) & (ax <= 2.0)))


def _linear(x: np.ndarray, a: float) -> np.ndarray:
    ax = np.abs(x)
    return (1.0 - ax) * (ax <= 1.0)


_KERNELS = {"cubic": (_cubic, 4.0), "linear": (_linear, 2.0)}


def axis_weights(n: int, m: int, scale: float, kernel: str = "cubic", a: float = -0.5,
                 antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(weights float64 (m, P), indices int64 (m, P) into [0, n)) of one axis resized n -> m at ``scale``."""
    fn, width = _KERNELS[kernel]
    aa = scale < 1 and antialias
    if aa:
        width = width / scale
    u = np.arange(1, m + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p, dtype=np.float64)[None, :]
    dist = u[:, None] - idx
    w = scale * fn(dist * scale, a) if aa else fn(dist, a)
    w = w / w.sum(axis=1, keepdims=True)
    if np.any(w[:, 0] == 0):
        w, idx = w[:, 1:], idx[:, 1:]
    if np.any(w[:, -1] == 0):
        w, idx = w[:, :-1], idx[:, :-1]
    j = idx.astype(np.int64) - 1  # 0-based; mirror with edge duplication (period 2n)
    j = np.mod(j, 2 * n)
    j = np.where(j >= n, 2 * n - 1 - j, j)
    return np.ascontiguousarray(w), np.ascontiguousarray(j)


def imresize(img: np.ndarray, *, scale: float | None = None, size_hw: tuple[int, int] | None = None,
             kernel: str = "cubic", a: float = -0.5, antialias: bool = True) -> np.ndarray:
    """Resize float32 HxWx3 (any values) by ``scale`` (output ceil(H * scale) x ceil(W * scale)) or to
    ``size_hw`` (per-axis scale = out / in). kernel 'cubic' (Keys, parameter ``a``) or 'linear'.
    Returns float32 (h, w, 3), unclipped."""
    img = check_image(img)
    if (scale is None) == (size_hw is None):
        raise ValueError("imresize: give exactly one of scale and size_hw")
    if kernel not in _KERNELS:
        raise ValueError(f"imresize: kernel must be one of {sorted(_KERNELS)}, got {kernel!r}")
    h, w = img.shape[:2]
    if scale is not None:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"imresize: scale must be a positive number, got {scale!r}")
        oh, ow, sh, sw = math.ceil(h * scale), math.ceil(w * scale), float(scale), float(scale)
    else:
        oh, ow = (int(v) for v in size_hw)
        if oh < 1 or ow < 1:
            raise ValueError(f"imresize: size_hw must be >= 1, got {size_hw!r}")
        sh, sw = oh / h, ow / w
    wh, ih = axis_weights(h, oh, sh, kernel, a, antialias)
    ww, iw = axis_weights(w, ow, sw, kernel, a, antialias)
    tmp = np.empty((oh, w * 3), np.float32)
    _resample_rows(img.reshape(h, w * 3), ih, wh, tmp)
    out = np.empty((oh, ow, 3), np.float32)
    _resample_cols(tmp.reshape(oh, w, 3), iw, ww, out)
    return out


@njit(cache=True, nogil=True)
def _resample_rows(src, idx, wts, out):
    """out[i, :] = sum_p wts[i, p] * src[idx[i, p], :] (float64 sums); src (n, M) f32, out (m, M) f32."""
    m, p = idx.shape
    cols = src.shape[1]
    acc = np.empty(cols, np.float64)
    for i in range(m):
        acc[:] = 0.0
        for t in range(p):
            wt = wts[i, t]
            row = idx[i, t]
            for c in range(cols):
                acc[c] += wt * src[row, c]
        for c in range(cols):
            out[i, c] = acc[c]


@njit(cache=True, nogil=True)
def _resample_cols(src, idx, wts, out):
    """out[r, j, ch] = sum_p wts[j, p] * src[r, idx[j, p], ch] (float64 sums); src (H, n, 3), out (H, m, 3)."""
    rows = src.shape[0]
    m, p = idx.shape
    for r in range(rows):
        for j in range(m):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            for t in range(p):
                wt = wts[j, t]
                col = idx[j, t]
                a0 += wt * src[r, col, 0]
                a1 += wt * src[r, col, 1]
                a2 += wt * src[r, col, 2]
            out[r, j, 0] = a0
            out[r, j, 1] = a1
            out[r, j, 2] = a2
