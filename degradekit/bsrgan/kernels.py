"""BSRGAN's blur kernels (spec §3, §4), vectorised (the published code calls a scipy pdf per tap).

All return float64 (k, k) arrays that sum to 1. Offsets: tap (row i, column j) sits at
(y, x) = (i - (k-1)/2, j - (k-1)/2), x = column offset, y = row offset, as the published gm_blur_kernel.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["anisotropic_gaussian", "fspecial_gaussian", "shift_kernel", "nearest_kernel"]

# A U(0, 1) draw of exactly 0 would make the published code fail (singular covariance / sigma 0); such a
# width is floored here (a line or point kernel), which changes nothing for any other draw.
_TINY = 1e-12


def _offsets(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float64) - (size - 1) / 2.0


def anisotropic_gaussian(size: int, l1: float, l2: float, theta: float) -> np.ndarray:
    """N(0, Sigma) density at the integer taps, normalised; Sigma = V diag(l1, l2) V^-1 with V's first column
    (cos theta, sin theta) in (x, y) (B:64-96). l1, l2 are the covariance eigenvalues (variances, px^2)."""
    c, s = math.cos(theta), math.sin(theta)
    i1, i2 = 1.0 / max(float(l1), _TINY), 1.0 / max(float(l2), _TINY)
    # Sigma^-1 = V diag(1/l1, 1/l2) V (V is a symmetric reflection, V^-1 = V)
    a = c * c * i1 + s * s * i2
    b = c * s * (i1 - i2)
    d = s * s * i1 + c * c * i2
    o = _offsets(size)
    x, y = o[None, :], o[:, None]
    k = np.exp(-0.5 * (a * x * x + 2.0 * b * x * y + d * y * y))  # the centre tap is exp(0) = 1: no underflow
    return k / k.sum()


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB fspecial('gaussian', size, sigma) as B:185-199: taps below eps * max are zeroed, then normalised
    (numpy.finfo's eps for the gone scipy.finfo: the same value)."""
    o = _offsets(size)
    sig = max(float(sigma), _TINY)
    h = np.exp(-(o[None, :] ** 2 + o[:, None] ** 2) / (2.0 * sig * sig))
    h[h < np.finfo(float).eps * h.max()] = 0.0
    return h / h.sum()


def _shift_axis(k: np.ndarray, d: float, axis: int) -> np.ndarray:
    n = k.shape[axis]
    t = np.clip(np.arange(n, dtype=np.float64) + d, 0.0, n - 1.0)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    f = t - i0
    if axis == 0:
        return (1.0 - f)[:, None] * k[i0] + f[:, None] * k[i1]
    return (1.0 - f)[None, :] * k[:, i0] + f[None, :] * k[:, i1]


def shift_kernel(k: np.ndarray, sf: int) -> np.ndarray:
    """B:99-125 shift_pixel: the kernel resampled at (i + d, j + d), d = (sf - 1) / 2, by bilinear
    interpolation with coordinates clamped to the grid (what scipy interp2d 'linear' did), so its content moves
    d px towards the upper left. Not renormalised."""
    d = (sf - 1) * 0.5
    return _shift_axis(_shift_axis(np.asarray(k, np.float64), d, 0), d, 1)


def nearest_kernel(sigma: float, sf: int) -> np.ndarray:
    """The nearest branch's kernel as a *correlation* kernel: 25x25 fspecial Gaussian, shifted, renormalised,
    then flipped -- the published code convolves (ndimage.convolve flips), so that sampling pixel sf*i of the
    result is centred on HR position sf*i + (sf-1)/2, the centre of the sf x sf block (spec §4)."""
    k = shift_kernel(fspecial_gaussian(25, sigma), sf)
    k = k / k.sum()
    return np.ascontiguousarray(k[::-1, ::-1])
