"""Blur kernels beyond the Gaussian family: box, disk (defocus) and motion (a line), anti-aliased.

Each builder returns a float64 (k, k) array, k odd, summing to 1, centred and point-symmetric (so correlation
and convolution agree); apply it with ``degradekit.ops.blur.blur(img, kernel)`` (reflect-101 borders). Every
weight is the coverage of a pixel by the continuous shape, so sizes and angles vary smoothly (no jump when a
fractional size crosses an integer), unlike a rasterised shape.
"""

from __future__ import annotations

import math

import numpy as np

from ._check import check_finite_number

_MOTION_SAMPLES_PER_PX = 32  # points per pixel of segment length, each splatted bilinearly


def _coverage_1d(half: float) -> np.ndarray:
    """Length of [-half, half] inside each unit pixel [j - 0.5, j + 0.5] of the smallest odd grid holding it."""
    r = max(0, math.ceil(half - 0.5))
    j = np.arange(-r, r + 1, dtype=np.float64)
    return np.clip(np.minimum(j + 0.5, half) - np.maximum(j - 0.5, -half), 0.0, 1.0)


def box_kernel(size: float) -> np.ndarray:
    """A ``size`` x ``size`` box (size >= 1 px) centred on a pixel: each tap weighted by the area of the pixel
    inside the square. Odd integer sizes are the plain box; otherwise the edge taps on both sides get
    ``(size - n) / 2`` of a tap, n the largest odd integer <= size (e.g. 4.0 -> 1/2, 1, 1, 1, 1/2, per axis), so
    the box stays centred and its width is exactly ``size``. Returns float64 (k, k), k = the smallest odd
    integer >= size, sum 1.
    """
    size = check_finite_number(size, "size", lo=1.0)
    w = _coverage_1d(size / 2.0)
    k = np.outer(w, w)
    return k / k.sum()


def disk_kernel(radius: float) -> np.ndarray:
    """Defocus: each tap is the area of its pixel inside a disk of ``radius`` px (> 0) centred on the centre
    pixel (an anti-aliased edge; radius <= 0.5 stays inside the centre pixel: the identity). The areas are
    exact (closed form, float64), their sum pi r^2. Returns float64 (k, k), k = 2 ceil(radius - 0.5) + 1, sum 1.
    """
    radius = check_finite_number(radius, "radius")
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
    """
    r2 = radius * radius
    n = 2 * math.ceil(radius - 0.5) + 1
    edges = np.arange(n + 1, dtype=np.float64) - n / 2.0  # pixel boundaries, the centre pixel on [-0.5, 0.5]

    def prim(t):
        t = np.clip(t, -radius, radius)
        return 0.5 * (t * np.sqrt(np.maximum(r2 - t * t, 0.0)) + r2 * np.arcsin(t / radius))

    y = edges[:, None]
    x = np.clip(edges[None, :], -radius, radius)
    s = np.sqrt(np.maximum(r2 - y * y, 0.0))
    m = np.clip(x, -s, s)
    upper = y >= 0.0
    f = np.where(upper, 2.0 * (prim(x) - prim(-radius)), 0.0) - np.where(upper, 1.0, -1.0) * (prim(m) - prim(-s))
    f += y * (m + s)
    area = f[1:, 1:] - f[:-1, 1:] - f[1:, :-1] + f[:-1, :-1]  # (row, column)
    return np.maximum(area, 0.0)  # cancellation leaves ~-1e-13 where a pixel is outside the disk


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Linear motion: a segment of ``length`` px (>= 1) through the centre of the kernel, at ``angle`` degrees
    counter-clockwise from the +x axis as seen on screen (rows grow downwards: 90 is vertical, 45 rises to the
    right). The segment is integrated with 32 points per px, each splatted bilinearly onto the grid
    (anti-aliased). Returns float64 (k, k), k = 2 ceil(length / 2) + 1, sum 1; the covariance of the taps is
    ~``length^2 / 12`` along the segment (plus the splat's ~1/6 px^2) and ~1/6 px^2 across it.
    """
    length = check_finite_number(length, "length", lo=1.0)
    angle = check_finite_number(angle, "angle")
    r = math.ceil(length / 2.0)
    k = 2 * r + 1
    n = max(2, math.ceil(length * _MOTION_SAMPLES_PER_PX))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length  # midpoints: |t| < length / 2, inside the grid
    th = math.radians(angle)
    x = r + t * math.cos(th)
    y = r - t * math.sin(th)  # screen: up is -row
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    # 0 < x, y < 2r = k - 1: all four splat taps fall inside the grid.
    flat = np.concatenate([(y0 + dy) * k + x0 + dx for dy in (0, 1) for dx in (0, 1)])
    wts = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    out = np.bincount(flat, weights=wts, minlength=k * k).reshape(k, k)
    # Exact point symmetry (the sample set is symmetric, the splat's rounding is not quite): average with the
    # 180-degree rotation.
    out = 0.5 * (out + out[::-1, ::-1])
    return out / out.sum()
