"""Blur kernels beyond the Gaussian family: box, disk (defocus) and motion (a line), anti-aliased.

Each builder returns a float64 (k, k) array, k odd, summing to 1, centred and point-symmetric (so correlation
and convolution agree); apply it with ``degradekit.ops.blur.blur(img, kernel)`` (reflect-101 borders). Every
weight is the coverage of a pixel by the continuous shape, so sizes and angles vary smoothly (no jump when a
fractional size crosses an integer), unlike a rasterised shape.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._check import check_finite_number

_MOTION_SAMPLES_PER_PX = 32  # points per pixel of segment length, each splatted bilinearly


def _number(x, name: str, lo: float | None = None) -> float:
    """check_finite_number, with a fast path for a plain finite float in range (the common call)."""
    if type(x) is float and math.isfinite(x) and (lo is None or x >= lo):
        return x
    return check_finite_number(x, name, lo=lo)


def box_kernel(size: float) -> np.ndarray:
    """A ``size`` x ``size`` box (size >= 1 px) centred on a pixel: each tap weighted by the area of the pixel
    inside the square. Odd integer sizes are the plain box; otherwise the edge taps on both sides get
    ``(size - n) / 2`` of a tap, n the largest odd integer <= size (e.g. 4.0 -> 1/2, 1, 1, 1, 1/2, per axis), so
    the box stays centred and its width is exactly ``size``. Returns float64 (k, k), k = the smallest odd
    integer >= size, sum 1.
    """
    size = _number(size, "size", lo=1.0)
    half = size / 2.0
    r = max(0, math.ceil(half - 0.5))
    # Per tap j in -r..r: the length of [-half, half] inside the pixel [j - 0.5, j + 0.5], in scalar Python (the
    # float64 operations of the NumPy clip/minimum/maximum formulation; every tap > 0, so no signed-zero ties).
    w = np.array([min(max(min(j + 0.5, half) - max(j - 0.5, -half), 0.0), 1.0) for j in range(-r, r + 1)])
    k = np.multiply.outer(w, w)
    return k / k.sum()


def disk_kernel(radius: float) -> np.ndarray:
    """Defocus: each tap is the area of its pixel inside a disk of ``radius`` px (> 0) centred on the centre
    pixel (an anti-aliased edge; radius <= 0.5 stays inside the centre pixel: the identity). The areas are
    exact (closed form, float64), their sum pi r^2. Returns float64 (k, k), k = 2 ceil(radius - 0.5) + 1, sum 1.
    """
    radius = _number(radius, "radius")
    if radius <= 0.0:
        raise ValueError(f"radius: expected > 0, got {radius}")
    if radius <= 0.5:
        return np.ones((1, 1))
    area = _disk_area(radius)
    return area / area.sum()


def _disk_area(radius: float) -> np.ndarray:
    """Exact per-pixel areas of the disk (the kernel before normalisation), by inclusion-exclusion of
    ``F(x, y) = area of the disk inside {X <= x, Y <= y}`` at the pixel corners, in closed form from the
    antiderivative of the half chord ``c(t) = sqrt(r^2 - t^2)``: ``C(t) = (t c(t) + r^2 asin(t / r)) / 2``.
    With ``x' = clip(x, -r, r)``, ``s = sqrt(max(r^2 - y^2, 0))`` (where ``c > |y|``), ``m = clip(x', -s, s)``:
    ``F = 2 (C(x') - C(-r)) [y >= 0] - sign(y) (C(m) - C(-s)) + y (m + s)``.

    Two Numba kernels around one ``np.arcsin`` call: NumPy's SIMD arcsin is not libm's (they differ in the
    last bit for ~8% of arguments), and the areas stay those of the plain NumPy formulation bit for bit
    (tests/test_ops_blur_kinds.py compares with it)."""
    n = 2 * math.ceil(radius - 0.5) + 1
    n1 = n + 1
    t = np.empty(n1 + 1 + n1 * n1 + n1)
    m = np.empty((n1, n1))
    s = np.empty(n1)
    _disk_args(float(radius), n, t, m, s)
    asin = np.arcsin(t / radius)
    area = np.empty((n, n))
    _disk_combine(float(radius), n, t, asin, m, s, area)
    return area


@njit(cache=True, nogil=True)
def _disk_args(radius, n, t, m, s):
    """The clipped arguments of ``C`` for _disk_area, packed into ``t``: x' (n + 1), -r (1), m ((n + 1)^2)
    row-major, -s (n + 1); ``m`` and ``s`` also returned apart. Float64, the NumPy formulation's operations."""
    r2 = radius * radius
    n1 = n + 1
    half = n / 2.0
    for j in range(n1):
        e = j - half
        t[j] = min(max(e, -radius), radius)
    t[n1] = min(max(-radius, -radius), radius)
    for i in range(n1):
        y = i - half
        si = math.sqrt(max(r2 - y * y, 0.0))
        s[i] = si
        t[n1 + 1 + n1 * n1 + i] = min(max(-si, -radius), radius)
        for j in range(n1):
            x = t[j]
            mij = min(max(x, -si), si)
            m[i, j] = mij
            t[n1 + 1 + i * n1 + j] = min(max(mij, -radius), radius)


@njit(cache=True, nogil=True)
def _disk_combine(radius, n, t, asin, m, s, area):
    """``prim = (t sqrt(max(r^2 - t^2, 0)) + r^2 asin) / 2`` on the packed arguments, then F at the corners and
    the inclusion-exclusion into ``area`` (n, n), clamped at 0 (as ``np.maximum``: -0.0 stays -0.0)."""
    r2 = radius * radius
    n1 = n + 1
    half = n / 2.0
    prim = np.empty(t.shape[0])
    for q in range(t.shape[0]):
        tq = t[q]
        prim[q] = 0.5 * (tq * math.sqrt(max(r2 - tq * tq, 0.0)) + r2 * asin[q])
    pr = prim[n1]
    f = np.empty((n1, n1))
    for i in range(n1):
        y = i - half
        ps = prim[n1 + 1 + n1 * n1 + i]
        upper = y >= 0.0
        sg = 1.0 if upper else -1.0
        for j in range(n1):
            a = 2.0 * (prim[j] - pr) if upper else 0.0
            v = a - sg * (prim[n1 + 1 + i * n1 + j] - ps)
            f[i, j] = v + y * (m[i, j] + s[i])
    for i in range(n):
        for j in range(n):
            v = f[i + 1, j + 1] - f[i, j + 1] - f[i + 1, j] + f[i, j]
            area[i, j] = v if (v >= 0.0 or v != v) else 0.0


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Linear motion: a segment of ``length`` px (>= 1) through the centre of the kernel, at ``angle`` degrees
    counter-clockwise from the +x axis as seen on screen (rows grow downwards: 90 is vertical, 45 rises to the
    right). The segment is integrated with 32 points per px, each splatted bilinearly onto the grid
    (anti-aliased). Returns float64 (k, k), k = 2 ceil(length / 2) + 1, sum 1; the covariance of the taps is
    ~``length^2 / 12`` along the segment (plus the splat's ~1/6 px^2) and ~1/6 px^2 across it.
    """
    length = _number(length, "length", lo=1.0)
    angle = _number(angle, "angle")
    r = math.ceil(length / 2.0)
    k = 2 * r + 1
    n = max(2, math.ceil(length * _MOTION_SAMPLES_PER_PX))
    th = math.radians(angle)
    # Exact point symmetry (the sample set is symmetric, the splat's rounding is not quite): the splat is
    # averaged with its 180-degree rotation (in _motion_splat).
    out = np.empty((k, k))
    _motion_splat(float(length), n, r, math.cos(th), math.sin(th), np.zeros((k, k)), out)
    out /= out.sum()
    return out


@njit(cache=True, nogil=True)
def _motion_splat(length, n, r, cth, sth, acc, out):
    """Splat the n segment midpoints ``t_i = ((i + 0.5) / n - 0.5) length`` at (r + t cos, r - t sin) bilinearly
    into ``acc`` (k, k), zeros on entry, then ``out = 0.5 * (acc + acc[::-1, ::-1])``. The four corner passes in the order of the NumPy formulation's
    ``np.bincount`` over the concatenated (dy, dx) = (0,0), (0,1), (1,0), (1,1) taps, so the float64 sums are the
    same to the last bit. 0 < x, y < 2r = k - 1: every tap falls inside the grid."""
    xi = np.empty(n, np.int64)
    yi = np.empty(n, np.int64)
    fxs = np.empty(n)
    fys = np.empty(n)
    for i in range(n):
        t = ((i + 0.5) / n - 0.5) * length
        x = r + t * cth
        y = r - t * sth
        x0 = math.floor(x)
        y0 = math.floor(y)
        xi[i] = int(x0)
        yi[i] = int(y0)
        fxs[i] = x - x0
        fys[i] = y - y0
    for dy in range(2):
        for dx in range(2):
            for i in range(n):
                fx = fxs[i]
                fy = fys[i]
                wy = fy if dy else 1 - fy
                wx = fx if dx else 1 - fx
                acc[yi[i] + dy, xi[i] + dx] += wy * wx
    k = acc.shape[0]
    for i in range(k):
        for j in range(k):
            out[i, j] = 0.5 * (acc[i, j] + acc[k - 1 - i, k - 1 - j])
